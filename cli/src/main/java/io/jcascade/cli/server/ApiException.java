package io.jcascade.cli.server;

/**
 * An error answered to the client in OpenAI's shape,
 * {@code {"error": {"message", "type", "param", "code"}}}, with an HTTP status.
 *
 * <pre>{@code
 * throw ApiException.badRequest("max_tokens: expected an integer >= 0, got -1", "max_tokens");
 * }</pre>
 */
public final class ApiException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int status;
    private final String type;
    private final String param;
    private final String code;

    public ApiException(int status, String type, String message, String param, String code) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    /** 400 {@code invalid_request_error} about one request field ({@code param} may be null). */
    public static ApiException badRequest(String message, String param) {
        return new ApiException(400, "invalid_request_error", message, param, null);
    }

    /** 503: every generation slot and queue place is taken, or the server is stopping. */
    public static ApiException overloaded(String message) {
        return new ApiException(503, "server_error", message, null, "overloaded");
    }

    public int status() {
        return status;
    }

    public String type() {
        return type;
    }

    public String param() {
        return param;
    }

    public String code() {
        return code;
    }
}
