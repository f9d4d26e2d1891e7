package com.mindspore.flclient;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * r1.6's compatibility layer (com.mindspore.lite and com.mindspore.flclient.model: the r1.6 case
 * API and its R16Case adapter) depends on the project's core; the core names nothing of it but
 * the two r1.6 enums its own r1.6 API (FLParameter.setDataMap, the case API's Status) is written in.
 */
class CompatLayerBoundaryTest {
    private static final Path MAIN = Path.of("src", "main", "java");
    private static final Pattern COMPAT = Pattern.compile("com\\.mindspore\\.(lite\\b[\\w.]*|flclient\\.model\\.\\w+)");
    private static final List<String> SHARED = List.of("com.mindspore.flclient.model.RunType",
            "com.mindspore.flclient.model.Status");

    private static boolean compatLayer(Path file) {
        String p = MAIN.relativize(file).toString().replace('\\', '/');
        return p.startsWith("com/mindspore/lite/") || p.startsWith("com/mindspore/flclient/model/");
    }

    @Test
    void theCoreNamesNothingOfTheCompatibilityLayerButTheSharedR16Enums() throws IOException {
        List<String> found = new ArrayList<>();
        List<Path> files;
        try (Stream<Path> all = Files.walk(MAIN)) {
            files = all.filter(f -> f.toString().endsWith(".java")).toList();
        }
        assertTrue(files.size() > 50, "the main sources are found from " + Path.of("").toAbsolutePath());
        for (Path f : files) {
            if (compatLayer(f)) {
                continue;
            }
            String code = Files.readString(f).replaceAll("(?s)/\\*.*?\\*/", "").replaceAll("//[^\\n]*", "");
            Matcher m = COMPAT.matcher(code);
            while (m.find()) {
                if (!SHARED.contains(m.group())) {
                    found.add(MAIN.relativize(f) + ": " + m.group());
                }
            }
        }
        assertEquals(List.of(), found);
    }
}
