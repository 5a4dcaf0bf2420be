package io.jcascade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jcascade.cascade.Cascade;
import io.jcascade.cascade.CascadeConfig;
import io.jcascade.cascade.CascadeJson;
import io.jcascade.cascade.CascadeResult;
import io.jcascade.cascade.CascadeStats;
import io.jcascade.cascade.ConfigException;
import io.jcascade.cascade.Signal;
import io.jcascade.cascade.Signals;
import io.jcascade.cascade.TierConfig;
import io.jcascade.cli.JCascade.CliException;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jcascade cascade}: answer prompts with a model cascade, escalating from cheap to strong
 * tiers when the cheap one is unsure.
 *
 * <pre>
 * ./jcascade cascade --demo
 * ./jcascade cascade --config models/arith-cascade.json --prompt "37+485="
 * ./jcascade cascade --config cascade.json --input prompts.jsonl --output answers.jsonl \
 *     --signal max_entropy --thresholds 0.5,0.8 --decision-log decisions.jsonl --distill-log distill.jsonl
 * </pre>
 */
@Command(name = "cascade", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Answer prompts with a model cascade: the cheapest tier first, escalating when its "
                + "confidence signal crosses the threshold.",
            "Each output line is the input object plus completion, tier, escalated, signals, cost and degraded."})
final class CascadeCommand implements Callable<Integer> {
    static final String DEMO_CONFIG = "models/arith-cascade.json";
    static final String DEMO_INPUT = "models/arith-demo.jsonl";

    @Spec
    CommandSpec spec;

    @Option(names = "--config", paramLabel = "FILE", description = "cascade config (JSON; see docs/CASCADE.md)")
    Path config;

    @Option(names = "--demo", description = "run the arithmetic demo: " + DEMO_CONFIG + " on " + DEMO_INPUT
            + ", printed as a table")
    boolean demo;

    @Option(names = "--prompt", paramLabel = "TEXT", description = "one prompt")
    String prompt;

    @Option(names = "--input", paramLabel = "IN.jsonl", description = "one JSON object with a \"prompt\" string per line")
    Path input;

    @Option(names = "--output", paramLabel = "OUT.jsonl", description = "where the answered lines go")
    Path output;

    @Option(names = "--signal", paramLabel = "S",
            description = "override the policy signal: mean_entropy, max_entropy, entropy_q90, min_prob, mean_margin, "
                    + "first_k_entropy, seq_logprob")
    String signal;

    @Option(names = "--threshold", paramLabel = "X", description = "override the thresholds: X for every step")
    Double threshold;

    @Option(names = "--thresholds", paramLabel = "a,b", split = ",",
            description = "override the thresholds, one per step between tiers")
    List<Double> thresholds;

    @Option(names = "--decision-log", paramLabel = "F", description = "append one JSON line per prompt with every "
            + "tier's signals, decision, threshold, cost and latency")
    Path decisionLog;

    @Option(names = "--distill-log", paramLabel = "F",
            description = "append {\"prompt\",\"completion\",\"tier\"} for every escalated prompt")
    Path distillLog;

    @Option(names = "--threads", paramLabel = "N", description = "CPU threads for every local tier (default: the config's)")
    Integer threads;

    @Option(names = "--table", description = "print a table of the answers (implied by --demo)")
    boolean table;

    private final ObjectMapper json = new ObjectMapper();

    @Override
    public Integer call() throws Exception {
        if (demo && config == null) {
            config = findInRepo(DEMO_CONFIG);
            if (prompt == null && input == null) {
                input = findInRepo(DEMO_INPUT);
            }
        }
        if (config == null) {
            throw new CliException("give --config FILE (or --demo)");
        }
        if ((prompt == null) == (input == null)) {
            throw new CliException("give either --prompt TEXT or --input IN.jsonl --output OUT.jsonl");
        }
        if (input != null && output == null && !demo && !table) {
            throw new CliException("--input needs --output OUT.jsonl (or --table to print the answers)");
        }
        if (threshold != null && thresholds != null) {
            throw new CliException("give --threshold or --thresholds, not both");
        }
        if (!Files.isRegularFile(config)) {
            throw new CliException("no such config file: " + config);
        }
        CascadeConfig c;
        try {
            c = CascadeConfig.load(config);
            if (signal != null) {
                c = c.withSignal(Signal.parse(signal));
            }
            if (threshold != null) {
                c = c.withThresholds(List.of(threshold));
            } else if (thresholds != null) {
                c = c.withThresholds(thresholds);
            }
            if (threads != null) {
                c = c.withLocalThreads(threads);
            }
        } catch (IllegalArgumentException e) {
            throw new CliException(e.getMessage());
        }
        Cascade.Builder builder = Cascade.builder().config(c);
        if (decisionLog != null) {
            builder.decisionLog(decisionLog);
        }
        if (distillLog != null) {
            builder.distillLog(distillLog);
        }
        Cascade built;
        try {
            built = builder.build();
        } catch (ConfigException e) {
            throw new CliException(e.getMessage());
        }
        try (Cascade cascade = built) {
            List<TierConfig> tiers = c.tiers();
            if (prompt != null) {
                return single(cascade);
            }
            return batch(cascade, tiers);
        }
    }

    private int single(Cascade cascade) {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        CascadeResult r = cascade.run(prompt);
        out.println(r.completion());
        out.flush();
        StringBuilder b = new StringBuilder("tier " + r.tier() + (r.escalated() ? " (escalated)" : "")
                + (r.degraded() ? " DEGRADED" : "") + ", cost " + CascadeStats.money(r.cost())
                + String.format(", %.2f ms", r.latencyMs()));
        r.signals().forEach((tier, s) -> b.append(String.format("; %s %s %.4f", tier,
                cascade.policy().signal().key(), s.get(cascade.policy().signal()))));
        r.attempts().stream().filter(a -> a.output().error() != null)
                .forEach(a -> b.append("; ").append(a.tier()).append(" failed: ").append(a.output().error()));
        err.println(b);
        err.flush();
        return 0;
    }

    private int batch(Cascade cascade, List<TierConfig> tiers) throws IOException {
        if (!Files.isRegularFile(input)) {
            throw new CliException("no such input file: " + input);
        }
        List<String> lines = Files.readAllLines(input, StandardCharsets.UTF_8);
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        boolean showTable = demo || table;
        ProgressBar bar = new ProgressBar(err, "cascade", lines.size(),
                System.console() != null && System.console().isTerminal());
        CascadeStats stats = new CascadeStats(tiers);
        Signal sig = cascade.policy().signal();
        String firstTier = tiers.get(0).name();
        List<String[]> rows = new ArrayList<>();
        int graded = 0;
        int right = 0;
        int skipped = 0;
        BufferedWriter w = output != null ? Files.newBufferedWriter(output, StandardCharsets.UTF_8) : null;
        try {
            for (int i = 0; i < lines.size(); i++) {
                String line = lines.get(i);
                if (line.isBlank()) {
                    bar.update(i + 1);
                    continue;
                }
                ObjectNode obj;
                try {
                    obj = JsonlPrompts.parse(json, line);
                } catch (CliException e) {
                    skipped++;
                    err.println("\n" + input + ":" + (i + 1) + ": skipped: " + e.getMessage());
                    bar.update(i + 1);
                    continue;
                }
                CascadeResult r = cascade.run(obj.get("prompt").asText());
                stats.add(r);
                String verdict = "";
                JsonNode answer = obj.get("answer");
                if (answer != null && !answer.isNull()) {
                    graded++;
                    boolean ok = r.completion().trim().equals(answer.asText().trim());
                    right += ok ? 1 : 0;
                    verdict = ok ? "right" : "wrong";
                }
                if (showTable) {
                    Signals s = r.signals().get(firstTier);
                    rows.add(new String[] {obj.get("prompt").asText(), r.tier() + (r.degraded() ? " (degraded)" : ""),
                        s != null ? String.format("%.4f", s.get(sig)) : "-", r.completion(),
                        answer != null ? answer.asText() : "", verdict, CascadeStats.money(r.cost())});
                }
                CascadeJson.addOutputFields(obj, r);
                if (w != null) {
                    w.write(json.writeValueAsString(obj));
                    w.newLine();
                    w.flush(); // an interrupted run keeps every finished answer
                }
                bar.update(i + 1);
            }
        } finally {
            if (w != null) {
                w.close();
            }
        }
        if (showTable) {
            printTable(out, new String[] {"prompt", "tier", firstTier + " " + sig.key(), "answer", "expected", "result",
                "cost"}, rows);
            out.println();
        }
        out.println(stats.summary());
        if (graded > 0) {
            out.printf("accuracy %d/%d (%.1f%%)%n", right, graded, 100.0 * right / graded);
        }
        if (output != null) {
            out.println("wrote " + stats.count() + " lines to " + output
                    + (skipped > 0 ? ", skipped " + skipped + " bad lines (see above)" : ""));
        }
        out.flush();
        return skipped > 0 && stats.count() == 0 ? 1 : 0;
    }

    private static void printTable(PrintWriter out, String[] header, List<String[]> rows) {
        int[] width = new int[header.length];
        for (int c = 0; c < header.length; c++) {
            width[c] = header[c].length();
            for (String[] r : rows) {
                width[c] = Math.max(width[c], r[c].length());
            }
        }
        StringBuilder fmt = new StringBuilder();
        for (int c = 0; c < header.length; c++) {
            fmt.append("%-").append(width[c]).append("s").append(c < header.length - 1 ? "  " : "%n");
        }
        out.printf(fmt.toString(), (Object[]) header);
        for (String[] r : rows) {
            out.printf(fmt.toString(), (Object[]) r);
        }
    }

    /** A file of the repository: under -Djcascade.root, the working directory, or beside the jar. */
    static Path findInRepo(String relative) {
        List<Path> roots = new ArrayList<>();
        String root = System.getProperty("jcascade.root");
        if (root != null) {
            roots.add(Path.of(root));
        }
        roots.add(Path.of("").toAbsolutePath());
        try {
            Path jar = Path.of(CascadeCommand.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            // cli/target/jcascade-cli.jar (or cli/target/classes) -> the repository root
            if (jar.getParent() != null && jar.getParent().getParent() != null) {
                roots.add(jar.getParent().getParent().getParent());
            }
        } catch (URISyntaxException | SecurityException | NullPointerException e) {
            // no code source: the first two guesses will do
        }
        for (Path r : roots) {
            if (r != null && Files.isRegularFile(r.resolve(relative))) {
                return r.resolve(relative);
            }
        }
        throw new CliException("cannot find " + relative + " (run from the repository root)");
    }
}
