package io.jcascade.cli;

import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufInspector;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code jcascade inspect FILE}: a GGUF file's metadata and tensor table. */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Print a GGUF file's metadata and tensor table.")
final class InspectCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "FILE", description = "GGUF file")
    Path file;

    @Override
    public Integer call() throws Exception {
        try (GgufFile gguf = GgufFile.open(file)) {
            spec.commandLine().getOut().print(GgufInspector.describe(gguf));
            spec.commandLine().getOut().flush();
        }
        return 0;
    }
}
