package io.jcascade.cli;

import io.jcascade.engine.ContextOverflowException;
import io.jcascade.engine.UnsupportedModelException;
import io.jcascade.engine.chat.ChatTemplateException;
import io.jcascade.gguf.GgufFormatException;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code jcascade} command line.
 *
 * <pre>
 * ./jcascade generate --model models/stories260K.gguf --prompt "Once upon a time" --max-tokens 64 --temperature 0
 * ./jcascade inspect models/arith-small.gguf
 * ./jcascade cascade --demo
 * ./jcascade tokenize --model models/stories260K.gguf --text "Once upon a time"
 * ./jcascade chat --model Meta-Llama-3-8B-Instruct.Q4_0.gguf --system "You are terse."
 * ./jcascade serve --model models/stories260K.gguf --port 8080
 * </pre>
 */
@Command(name = "jcascade", mixinStandardHelpOptions = true, versionProvider = JCascade.Version.class,
        description = "LLM inference and model cascades in pure Java.",
        subcommands = {GenerateCommand.class, ChatCommand.class, TokenizeCommand.class, CascadeCommand.class,
            ServeCommand.class, QuantizeCommand.class, SynthCommand.class, InspectCommand.class, BenchCommand.class,
            CommandLine.HelpCommand.class})
public final class JCascade {

    public static void main(String[] args) {
        System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs the command line with the given streams and returns the exit code (for tests). */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        return run(args, new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)), out, err);
    }

    /** Like {@link #run(String[], PrintWriter, PrintWriter)} with {@code in} as the chat's input. */
    public static int run(String[] args, BufferedReader in, PrintWriter out, PrintWriter err) {
        CommandLine.IFactory defaults = CommandLine.defaultFactory();
        CommandLine cli = new CommandLine(new JCascade(), new CommandLine.IFactory() {
            @Override
            @SuppressWarnings("unchecked")
            public <K> K create(Class<K> cls) throws Exception {
                return cls == ChatCommand.class ? (K) new ChatCommand(in) : defaults.create(cls);
            }
        });
        cli.setOut(out);
        cli.setErr(err);
        cli.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            // Problems with the user's input are one line, no stack trace; real bugs keep theirs.
            String message = userMessage(ex);
            if (message != null) {
                cmd.getErr().println("jcascade: error: " + message);
                return 1;
            }
            throw ex;
        });
        return cli.execute(args);
    }

    static String userMessage(Throwable ex) {
        if (ex instanceof NoSuchFileException e) {
            return "no such file: " + e.getFile();
        }
        if (ex instanceof AccessDeniedException e) {
            return "cannot read " + e.getFile() + ": permission denied";
        }
        if (ex instanceof GgufFormatException e) {
            return "not a valid GGUF file: " + e.getMessage();
        }
        if (ex instanceof UnsupportedModelException || ex instanceof ContextOverflowException
                || ex instanceof CliException || ex instanceof ChatTemplateException) {
            return ex.getMessage();
        }
        if (ex instanceof UnsupportedOperationException && ex.getMessage() != null) {
            return ex.getMessage();
        }
        if (ex instanceof IOException e) {
            return e.getClass().getSimpleName() + ": " + e.getMessage();
        }
        return null;
    }

    /** A problem with what the user asked for, reported as one line. */
    static final class CliException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        CliException(String message) {
            super(message);
        }
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = JCascade.class.getPackage().getImplementationVersion();
            return new String[] {"jcascade " + (v != null ? v : "(development build)"),
                "Java " + Runtime.version() + " on " + System.getProperty("os.name") + " " + System.getProperty("os.arch")};
        }
    }
}
