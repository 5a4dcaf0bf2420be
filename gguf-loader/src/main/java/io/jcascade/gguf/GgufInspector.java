package io.jcascade.gguf;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.Array;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Human-readable summary of a GGUF file, the text of the CLI's {@code inspect FILE} command: a
 * header (path, version, alignment, data offset, tensor count, parameters and bytes), every
 * metadata key with its type and value, then a table of tensors. Long arrays show their first
 * elements and their length, long strings (chat templates) their start and length, and control
 * characters are escaped, so each key takes exactly one line.
 *
 * <pre>{@code
 * try (GgufFile f = GgufFile.open(Path.of("model.gguf"))) {
 *     System.out.print(GgufInspector.describe(f));
 * }
 * }</pre>
 */
public final class GgufInspector {

    /** Array elements shown before the rest is abbreviated. */
    static final int ARRAY_PREVIEW = 5;
    /** Strings longer than this many characters are cut. */
    static final int STRING_PREVIEW = 60;

    private GgufInspector() {}

    /** The full description as a string. */
    public static String describe(GgufFile f) {
        StringBuilder sb = new StringBuilder();
        describe(f, sb);
        return sb.toString();
    }

    /** Writes the full description to {@code out}. */
    public static void describe(GgufFile f, Appendable out) {
        try {
            write(f, out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void write(GgufFile f, Appendable out) throws IOException {
        List<GgufTensor> tensors = f.tensors();
        long params = 0;
        long bytes = 0;
        for (GgufTensor t : tensors) {
            params += t.elementCount();
            bytes += t.byteSize();
        }
        line(out, "file:          " + (f.path() == null ? "(in memory)" : f.path()));
        line(out, "version:       " + f.version());
        line(out, "alignment:     " + f.alignment());
        line(out, "data offset:   " + f.dataOffset());
        line(out, "file size:     " + String.format(Locale.ROOT, "%,d bytes", f.segment().byteSize()));
        line(out, "tensors:       " + tensors.size());
        line(out, "parameters:    " + String.format(Locale.ROOT, "%,d (%s)", params, humanCount(params)));
        line(out, "tensor bytes:  " + String.format(Locale.ROOT, "%,d (%s)", bytes, humanBytes(bytes)));
        line(out, "");

        Map<String, GgufValue> metadata = f.metadata();
        line(out, "metadata (" + metadata.size() + " keys):");
        int keyWidth = 0;
        int typeWidth = 0;
        for (Map.Entry<String, GgufValue> e : metadata.entrySet()) {
            keyWidth = Math.max(keyWidth, Math.min(48, e.getKey().length()));
            typeWidth = Math.max(typeWidth, e.getValue().describeType().length());
        }
        for (Map.Entry<String, GgufValue> e : metadata.entrySet()) {
            line(out, "  " + pad(escape(e.getKey()), keyWidth) + "  " + pad(e.getValue().describeType(), typeWidth)
                    + "  " + formatValue(e.getValue()));
        }
        line(out, "");

        line(out, "tensors (" + tensors.size() + "):");
        String[] header = {"#", "name", "type", "shape", "bytes", "offset"};
        String[][] rows = new String[tensors.size()][];
        for (int i = 0; i < rows.length; i++) {
            GgufTensor t = tensors.get(i);
            rows[i] = new String[] {Integer.toString(i), escape(t.name()), t.type().toString(),
                Arrays.toString(t.shape()), Long.toString(t.byteSize()), Long.toString(t.offset())};
        }
        int[] widths = new int[header.length];
        for (int c = 0; c < header.length; c++) {
            widths[c] = header[c].length();
            for (String[] row : rows) {
                widths[c] = Math.max(widths[c], row[c].length());
            }
        }
        // Numbers right-aligned, text left-aligned.
        boolean[] right = {true, false, false, false, true, true};
        line(out, "  " + row(header, widths, right));
        for (String[] row : rows) {
            line(out, "  " + row(row, widths, right));
        }
    }

    /** One metadata value as the inspector prints it, abbreviated to fit one line. */
    public static String formatValue(GgufValue v) {
        StringBuilder sb = new StringBuilder();
        appendValue(sb, v.type(), v.elementType(), v.value(), 0);
        return sb.toString();
    }

    private static void appendValue(StringBuilder sb, GgufValueType type, GgufValueType elementType, Object value,
            int depth) {
        switch (type) {
            case STRING -> appendString(sb, (String) value);
            case UINT32, UINT64 -> sb.append(Long.toUnsignedString(((Number) value).longValue()));
            case ARRAY -> appendArray(sb, elementType, value, depth);
            default -> sb.append(value);
        }
    }

    private static void appendArray(StringBuilder sb, GgufValueType et, Object array, int depth) {
        int n = Array.getLength(array);
        // Nested arrays get fewer elements so one line stays readable.
        int show = Math.min(n, depth == 0 ? ARRAY_PREVIEW : 2);
        sb.append('[');
        for (int i = 0; i < show; i++) {
            if (i > 0) {
                sb.append(", ");
            }
            Object e = Array.get(array, i);
            switch (et) {
                case UINT8 -> sb.append(Byte.toUnsignedInt((Byte) e));
                case UINT16 -> sb.append(Short.toUnsignedInt((Short) e));
                case UINT32, UINT64 -> sb.append(Long.toUnsignedString((Long) e));
                case BOOL -> sb.append((Byte) e != 0);
                case STRING -> appendString(sb, (String) e);
                case ARRAY -> {
                    GgufValue g = (GgufValue) e;
                    appendArray(sb, g.elementType(), g.value(), depth + 1);
                }
                default -> sb.append(e);
            }
        }
        if (n > show) {
            sb.append(show > 0 ? ", " : "").append("... ").append(n).append(" elements");
        }
        sb.append(']');
    }

    private static void appendString(StringBuilder sb, String s) {
        int cps = s.codePointCount(0, s.length());
        if (cps <= STRING_PREVIEW) {
            sb.append('"').append(escape(s)).append('"');
        } else {
            String head = s.substring(0, s.offsetByCodePoints(0, STRING_PREVIEW));
            sb.append('"').append(escape(head)).append("\"... (").append(cps).append(" chars)");
        }
    }

    /** Escapes quotes, backslashes and control characters so a value cannot break the line. */
    static String escape(String s) {
        StringBuilder sb = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            String rep = switch (c) {
                case '\n' -> "\\n";
                case '\r' -> "\\r";
                case '\t' -> "\\t";
                case '"' -> "\\\"";
                case '\\' -> "\\\\";
                default -> Character.isISOControl(c) ? String.format(Locale.ROOT, "\\u%04x", (int) c) : null;
            };
            if (rep != null && sb == null) {
                sb = new StringBuilder(s.length() + 8).append(s, 0, i);
            }
            if (sb != null) {
                if (rep != null) {
                    sb.append(rep);
                } else {
                    sb.append(c);
                }
            }
        }
        return sb == null ? s : sb.toString();
    }

    static String humanCount(long n) {
        if (n < 1000) {
            return Long.toString(n);
        }
        String[] units = {"K", "M", "B", "T"};
        double v = n;
        int u = -1;
        while (v >= 1000 && u < units.length - 1) {
            v /= 1000;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f%s", v, units[u]);
    }

    static String humanBytes(long n) {
        if (n < 1024) {
            return n + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = n;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.2f %s", v, units[u]);
    }

    private static String row(String[] cells, int[] widths, boolean[] right) {
        StringBuilder sb = new StringBuilder();
        for (int c = 0; c < cells.length; c++) {
            if (c > 0) {
                sb.append("  ");
            }
            String cell = cells[c];
            if (right[c]) {
                sb.append(" ".repeat(widths[c] - cell.length())).append(cell);
            } else {
                sb.append(c == cells.length - 1 ? cell : pad(cell, widths[c]));
            }
        }
        return sb.toString().stripTrailing();
    }

    private static String pad(String s, int width) {
        return s.length() >= width ? s : s + " ".repeat(width - s.length());
    }

    private static void line(Appendable out, String s) throws IOException {
        out.append(s).append('\n');
    }
}
