package com.mindspore.flclient;

import java.nio.file.Path;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/**
 * One client ({@code c0}, its files under {@link #tmp}) against a {@link FakeServer} scripted in this JVM:
 * the set-up of the round-loop tests, a fresh server and fixture per test, the server closed after it.
 */
abstract class ScriptedServerTest {
    @TempDir
    Path tmp;

    FakeServer server;
    Fixture fx;

    @BeforeEach
    void startScriptedServer() throws Exception {
        server = new FakeServer();
        fx = new Fixture(tmp.resolve("c0"), "c0");
    }

    @AfterEach
    void closeScriptedServer() {
        server.close();
    }
}
