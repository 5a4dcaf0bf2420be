package io.jcascade.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.cli.CliTest.Run;
import org.junit.jupiter.api.Test;

/** {@code jcascade serve} argument errors: one line, no stack trace, before anything listens. */
class ServeCommandTest {

    @Test
    void needsExactlyOneOfModelAndCascade() {
        Run none = CliTest.run("serve");
        assertThat(none.exit()).isEqualTo(2);
        assertThat(none.err()).contains("--model", "--cascade");
        Run both = CliTest.run("serve", "--model", "a.gguf", "--cascade", "c.json");
        assertThat(both.exit()).isEqualTo(2);
        assertThat(both.err()).contains("mutually exclusive");
    }

    @Test
    void badInputsAreOneLineErrors() {
        Run missing = CliTest.run("serve", "--model", "no-such-model.gguf", "--port", "0");
        assertThat(missing.exit()).isEqualTo(1);
        assertThat(missing.err().strip()).isEqualTo("jcascade: error: no such file: no-such-model.gguf");
        Run format = CliTest.run("serve", "--model", CascadeCommandTest.repo("models/arith-small.gguf").toString(),
                "--chat-format", "jinja");
        assertThat(format.exit()).isEqualTo(1);
        assertThat(format.err()).contains("unknown --chat-format jinja; choose template, plain or raw");
        Run parallel = CliTest.run("serve", "--model", "x.gguf", "--parallel", "0");
        assertThat(parallel.exit()).isEqualTo(1);
        assertThat(parallel.err()).contains("--parallel must be >= 1");
        Run config = CliTest.run("serve", "--cascade", "no-such.json");
        assertThat(config.exit()).isEqualTo(1);
        assertThat(config.err()).contains("no such config file: no-such.json");
    }
}
