package io.jcascade.benchmarks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jcascade.engine.model.Llama;
import io.jcascade.gguf.GgufFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Turns a JMH JSON result file ({@code -rf json -rff FILE}) of this suite into the tables of
 * docs/BENCHMARKS.md: read bandwidth; each matrix-vector kernel's GB/s and GFLOP/s and its share of
 * the bandwidth at the same thread count; and per model the jcascade and llama.cpp prefill and
 * decode tokens/s, their ratio jcascade / llama.cpp, and decode as a share of the bandwidth
 * ceiling (measured bandwidth / weight bytes per token, read from the model file).
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar io.jcascade.benchmarks.BenchReport results.json
 * </pre>
 *
 * Run it from the directory the benchmarks ran in, so that relative model paths resolve.
 */
public final class BenchReport {
    private static final String PKG = "io.jcascade.benchmarks.";

    private BenchReport() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: BenchReport JMH-RESULT.json");
            System.exit(2);
        }
        JsonNode runs = new ObjectMapper().readTree(Files.readString(Path.of(args[0])));
        int cores = Runtime.getRuntime().availableProcessors();

        Map<Integer, Double> bandwidth = new TreeMap<>();
        for (JsonNode r : runs) {
            if (r.get("benchmark").asText().equals(PKG + "MemoryBandwidthBenchmark.read")) {
                bandwidth.put(threads(r, cores), secondary(r, "readGBs"));
            }
        }
        if (!bandwidth.isEmpty()) {
            System.out.println("Read bandwidth (MemoryBandwidthBenchmark, Vector API sum over off-heap memory)\n");
            System.out.println("| threads | GB/s |");
            System.out.println("|--:|--:|");
            bandwidth.forEach((t, gbs) -> System.out.printf("| %d | %.1f |%n", t, gbs));
            System.out.println();
        }

        boolean header = false;
        for (JsonNode r : runs) {
            if (!r.get("benchmark").asText().equals(PKG + "MatVecBenchmark.matvec")) {
                continue;
            }
            if (!header) {
                System.out.println("Matrix-vector product, 1 token (MatVecBenchmark; rows x cols = out x in)\n");
                System.out.println("| type | shape | threads | cold MiB | matvec/s | weights GB/s | GFLOP/s"
                        + " | % of read bandwidth |");
                System.out.println("|---|---|--:|--:|--:|--:|--:|--:|");
                header = true;
            }
            int t = threads(r, cores);
            double gbs = secondary(r, "weightGBs");
            Double bw = bandwidth.get(t);
            System.out.printf("| %s | %s | %d | %s | %.1f | %.1f | %.1f | %s |%n", param(r, "type"), param(r, "shape"), t,
                    param(r, "coldMiB"),
                    r.get("primaryMetric").get("score").asDouble(), gbs, secondary(r, "gflops"),
                    bw != null ? String.format("%.0f%%", 100 * gbs / bw) : "n/a");
        }
        if (header) {
            System.out.println();
        }

        // model -> threads -> "engine.bench" -> tokens/s
        Map<String, Map<Integer, Map<String, Double>>> e2e = new LinkedHashMap<>();
        for (JsonNode r : runs) {
            String b = r.get("benchmark").asText();
            if (!b.startsWith(PKG + "EndToEndBenchmark.")) {
                continue;
            }
            String bench = b.substring(b.lastIndexOf('.') + 1);
            e2e.computeIfAbsent(param(r, "model"), k -> new TreeMap<>())
                    .computeIfAbsent(threads(r, cores), k -> new LinkedHashMap<>())
                    .put(param(r, "engine") + "." + bench, r.get("primaryMetric").get("score").asDouble());
        }
        if (!e2e.isEmpty()) {
            System.out.println("End to end (EndToEndBenchmark): prefill = 512-token prompt, decode = 128 tokens after a"
                    + " 128-token prompt; tokens/s. Ceiling = read bandwidth / weight bytes per token.\n");
            System.out.println("| model | threads | weights GB/token | prefill jcascade | prefill llama.cpp | ratio"
                    + " | decode jcascade | decode llama.cpp | ratio | ceiling tok/s | jcascade % of ceiling"
                    + " | llama.cpp % of ceiling |");
            System.out.println("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
            for (var m : e2e.entrySet()) {
                double gbPerToken = bytesPerToken(m.getKey()) / 1e9;
                for (var t : m.getValue().entrySet()) {
                    Map<String, Double> s = t.getValue();
                    Double bw = bandwidth.get(t.getKey());
                    double ceiling = bw != null && gbPerToken > 0 ? bw / gbPerToken : Double.NaN;
                    Double jd = s.get("jcascade.decode");
                    Double ld = s.get("llamacpp.decode");
                    System.out.printf("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |%n",
                            Path.of(m.getKey()).getFileName(), t.getKey(),
                            gbPerToken > 0 ? String.format("%.3g", gbPerToken) : "n/a",
                            f(s.get("jcascade.prefill")), f(s.get("llamacpp.prefill")),
                            ratio(s.get("jcascade.prefill"), s.get("llamacpp.prefill")),
                            f(jd), f(ld), ratio(jd, ld), Double.isNaN(ceiling) ? "n/a" : String.format("%.1f", ceiling),
                            share(jd, ceiling), share(ld, ceiling));
                }
            }
        }
    }

    private static int threads(JsonNode r, int cores) {
        int t = Integer.parseInt(param(r, "threads"));
        return t > 0 ? t : cores;
    }

    private static String param(JsonNode r, String name) {
        JsonNode p = r.path("params").get(name);
        return p == null ? "" : p.asText();
    }

    private static double secondary(JsonNode r, String name) {
        JsonNode m = r.path("secondaryMetrics").get(name);
        return m == null ? Double.NaN : m.get("score").asDouble();
    }

    private static long bytesPerToken(String model) {
        try (GgufFile g = GgufFile.open(Path.of(model))) {
            return Llama.weightBytesPerToken(g);
        } catch (IOException | RuntimeException e) {
            System.err.println("BenchReport: cannot read " + model + " for its weight bytes: " + e.getMessage());
            return -1;
        }
    }

    private static String f(Double v) {
        return v == null ? "n/a" : String.format(v >= 100 ? "%.0f" : "%.2f", v);
    }

    private static String ratio(Double a, Double b) {
        return a == null || b == null ? "n/a" : String.format("%.2f", a / b);
    }

    private static String share(Double tps, double ceiling) {
        return tps == null || Double.isNaN(ceiling) ? "n/a" : String.format("%.0f%%", 100 * tps / ceiling);
    }
}
