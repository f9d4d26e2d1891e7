package com.mindspore.flclient;

import com.mindspore.flclient.cases.CaseAdapter;
import com.mindspore.flclient.cases.Client;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.reflect.InvocationTargetException;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;
import java.util.stream.Stream;

/**
 * Finds a case by its class name ({@code flName}) and makes a fresh instance: one per round, so
 * no state is shared between rounds or between clients of one JVM.
 */
final class ClientFactory {
    /** The case APIs besides the project's own (r1.6's), registered in META-INF/services. */
    private static final List<CaseAdapter> ADAPTERS = adapters();

    private ClientFactory() {
    }

    private static List<CaseAdapter> adapters() {
        List<CaseAdapter> out = new ArrayList<>();
        ServiceLoader.load(CaseAdapter.class, ClientFactory.class.getClassLoader()).forEach(out::add);
        return List.copyOf(out);
    }

    private static CaseAdapter adapterOf(Class<?> c) {
        for (CaseAdapter a : ADAPTERS) {
            if (a.accepts(c)) {
                return a;
            }
        }
        return null;
    }

    /**
     * The jars of {@code --module-path}, as a class loader. MindSpore r1.6's run_client_x86.py starts
     * each client as {@code java --module-path=FL_JAR_DIR:CASE_JAR_DIR -jar mindspore-lite-java-flclient.jar ...}:
     * the case jar is then on the module path but in no module graph, so it is looked up here.
     * Built once per JVM from its command line (read-only afterwards).
     */
    private static final class ModulePathJars {
        static final ClassLoader LOADER = create();

        private static ClassLoader create() {
            String modulePath = System.getProperty("jdk.module.path");
            if (modulePath == null || modulePath.isBlank()) {
                return null;
            }
            List<URL> urls = new ArrayList<>();
            for (String entry : modulePath.split(java.io.File.pathSeparator)) {
                Path p = Path.of(entry);
                try {
                    if (Files.isDirectory(p)) {
                        try (Stream<Path> jars = Files.list(p)) {
                            for (Path jar : (Iterable<Path>) jars.filter(j -> j.toString().endsWith(".jar")).sorted()::iterator) {
                                urls.add(jar.toUri().toURL());
                            }
                        }
                    } else if (Files.isRegularFile(p)) {
                        urls.add(p.toUri().toURL());
                    }
                } catch (MalformedURLException e) {
                    throw new IllegalArgumentException("--module-path entry " + entry + ": " + e.getMessage(), e);
                } catch (IOException e) {
                    throw new UncheckedIOException("--module-path entry " + entry + " cannot be listed: " + e.getMessage(), e);
                }
            }
            return urls.isEmpty() ? null
                    : new URLClassLoader("flclient-module-path", urls.toArray(new URL[0]), ClientFactory.class.getClassLoader());
        }
    }

    /**
     * Checks that the class exists and is a case: a subclass of this project's {@link Client} or of
     * the base class of a registered {@link CaseAdapter} (r1.6's API) (IllegalArgumentException naming
     * flName otherwise).
     */
    static Class<?> find(String flName) {
        Class<?> c = null;
        List<ClassLoader> loaders = new ArrayList<>();
        if (Thread.currentThread().getContextClassLoader() != null) {
            loaders.add(Thread.currentThread().getContextClassLoader());
        }
        loaders.add(ClientFactory.class.getClassLoader());
        for (ClassLoader cl : loaders) {
            try {
                c = Class.forName(flName, true, cl);
                break;
            } catch (ClassNotFoundException e) {
                // next
            }
        }
        if (c == null && ModulePathJars.LOADER != null) {
            try {
                c = Class.forName(flName, true, ModulePathJars.LOADER);
            } catch (ClassNotFoundException e) {
                // reported below
            }
        }
        if (c == null) {
            throw new IllegalArgumentException("FLParameter.flName = " + flName + ": no such class on the class path"
                    + " (or --module-path); put the case jar (e.g. quick_start_flclient.jar) next to the client jar in -cp");
        }
        if (!Client.class.isAssignableFrom(c) && adapterOf(c) == null) {
            StringBuilder bases = new StringBuilder();
            for (CaseAdapter a : ADAPTERS) {
                bases.append(a.caseBase().getName()).append(" (r1.6's API) or of ");
            }
            throw new IllegalArgumentException("FLParameter.flName = " + flName + ": the class is not a subclass of "
                    + bases + Client.class.getName());
        }
        return c;
    }

    /** A new instance of the case; a case of another API comes wrapped by its {@link CaseAdapter}. */
    static Client create(String flName) {
        Class<?> c = find(flName);
        try {
            Object o = c.getDeclaredConstructor().newInstance();
            return o instanceof Client ? (Client) o : adapterOf(c).adapt(o);
        } catch (NoSuchMethodException e) {
            throw new IllegalArgumentException("FLParameter.flName = " + flName + ": the class needs a public "
                    + "no-argument constructor", e);
        } catch (InvocationTargetException e) {
            throw new IllegalStateException("FLParameter.flName = " + flName + ": its constructor failed: "
                    + e.getCause(), e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalArgumentException("FLParameter.flName = " + flName + ": cannot instantiate it: " + e, e);
        }
    }
}
