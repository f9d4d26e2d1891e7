package com.mindspore.flclient;

import com.mindspore.flclient.model.RunType;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** FLParameter checks and the two command-line forms of SyncFLJob.main. */
class ParametersTest {
    @TempDir
    Path tmp;

    private static String messageOf(Runnable r) {
        return assertThrows(IllegalArgumentException.class, r::run).getMessage();
    }

    @Test
    void domainNameNeedsAnHttpOrHttpsScheme() {
        FLParameter p = new FLParameter();
        assertTrue(messageOf(() -> p.setDomainName("127.0.0.1:6666")).contains("domainName"));
        assertTrue(messageOf(() -> p.setDomainName("ftp://127.0.0.1:6666")).contains("scheme://host:port"));
        p.setDomainName("https://127.0.0.1:6666/");
        assertEquals("https://127.0.0.1:6666", p.getDomainName());
        assertTrue(p.isHttps());
    }

    @Test
    void domainNameWithAPathIsRefusedBecauseTheClientAppendsTheRounds() {
        FLParameter p = new FLParameter();
        assertEquals("FLParameter.domainName = http://127.0.0.1:6666/fl: give only scheme://host:port, e.g. "
                + "http://127.0.0.1:6666 (the client appends /startFLJob, ...)",
                messageOf(() -> p.setDomainName("http://127.0.0.1:6666/fl")));
    }

    @Test
    void checkRuleGivesTheVerdictOfTheSetterFromTheSharedTable() {
        assertEquals("FLParameter.timeOut = 0: must be at least 1 second", FLParameter.checkRule("timeOut", "0"));
        assertEquals("FLParameter.serverNum = 1001: must be between 1 and 1000", FLParameter.checkRule("serverNum", "1001"));
        assertNull(FLParameter.checkRule("serverNum", "1000"));
        assertNull(FLParameter.checkRule("domainName", "HTTP://10.0.0.1:6666/"));
        assertEquals(messageOf(() -> new FLParameter().setSslProtocol("SSLv3")), FLParameter.checkRule("sslProtocol", "SSLv3"));
        assertThrows(java.util.NoSuchElementException.class, () -> FLParameter.checkRule("colour", "red"));
    }

    @Test
    void hybridTrainingIsRefusedWhenSet() {
        assertTrue(messageOf(() -> new FLParameter().setServerMod(ServerMod.HYBRID_TRAINING))
                .contains("only FEDERATED_LEARNING is implemented"));
    }

    @Test
    void r16SettersAndGettersKeepR16sTypes() {
        FLParameter p = new FLParameter();
        p.setCpuBindMode(BindMode.BIND_MIDDLE_CORE);
        int mode = p.getCpuBindMode();
        assertEquals(2, mode);
        p.setEquipCrlPath("crl/equip.crl");
        p.setValidInterval(7200000L);
        p.setHybridWeightName(List.of("conv1.weight"), RunType.TRAINMODE);
        assertEquals("crl/equip.crl", p.getEquipCrlPath());
        assertEquals(7200000L, p.getValidInterval());
        assertEquals(List.of("conv1.weight"), p.getHybridWeightName(RunType.TRAINMODE));
        p.setPkiVerify(false);
        assertFalse(p.isPkiVerify());
    }

    @Test
    void pkiVerifyIsAcceptedAndNeedsThePkiPathFolder() {
        FLParameter p = new FLParameter();
        p.setPkiVerify(true);
        assertTrue(p.isPkiVerify());
        String msg = messageOf(() -> DeviceSigner.load(null, null, 0));
        assertTrue(msg.startsWith("FLParameter.pkiPath = null: pkiVerify needs"), msg);
        msg = messageOf(() -> DeviceSigner.load("/no/such/folder", null, 0));
        assertTrue(msg.startsWith("FLParameter.pkiPath = /no/such/folder: cannot read"), msg);
    }

    @Test
    void sslProtocolIsTls12OrTls13() {
        FLParameter p = new FLParameter();
        assertTrue(messageOf(() -> p.setSslProtocol("SSLv3")).contains("sslProtocol"));
        p.setSslProtocol("TLSv1.3");
        assertEquals("TLSv1.3", p.getSslProtocol());
    }

    @Test
    void certPathMustExistUnlessNull() {
        FLParameter p = new FLParameter();
        assertTrue(messageOf(() -> p.setCertPath(tmp.resolve("no.pem").toString())).contains("certPath"));
        p.setCertPath("null");
        assertNull(p.getCertPath());
    }

    @Test
    void numbersAreChecked() {
        FLParameter p = new FLParameter();
        assertTrue(messageOf(() -> p.setServerNum(0)).contains("serverNum"));
        assertTrue(messageOf(() -> p.setBatchSize(0)).contains("batchSize"));
        assertTrue(messageOf(() -> p.setThreadNum(0)).contains("threadNum"));
        assertTrue(messageOf(() -> p.setSleepTime(-1)).contains("sleepTime"));
        assertTrue(messageOf(() -> p.setTimeOut(0)).contains("timeOut"));
        assertTrue(messageOf(() -> p.setMaxRetries(-1)).contains("maxRetries"));
    }

    @Test
    void validateNamesTheFirstMissingField() throws Exception {
        FLParameter p = new FLParameter();
        assertTrue(messageOf(p::validate).contains("domainName"));
        p.setDomainName("http://127.0.0.1:6666");
        assertTrue(messageOf(p::validate).contains("flName"));
        p.setFlName(LinearClient.class.getName());
        assertTrue(messageOf(p::validate).contains("trainModelPath"));
        Fixture fx = new Fixture(tmp, "c");
        p.setTrainModelPath(fx.model.toString());
        assertTrue(messageOf(p::validate).contains("TRAINMODE"));
    }

    @Test
    void useElbNeedsAnExplicitPort() throws Exception {
        FLParameter p = new Fixture(tmp, "c").parameter("http://127.0.0.1");
        p.setUseElb(true);
        assertTrue(messageOf(p::validate).contains("useElb"));
    }

    @Test
    void anUnknownCaseClassIsRefusedWithAdvice() {
        FLParameter p = new FLParameter();
        p.setFlName("com.example.NoSuchClient");
        assertTrue(messageOf(() -> new SyncFLJob(p)).contains("case jar"));
        p.setFlName("java.lang.String");
        assertTrue(messageOf(() -> new SyncFLJob(p)).contains("not a subclass"));
    }

    @Test
    void everyParameterObjectIsIndependentButGetInstanceIsOne() {
        FLParameter a = new FLParameter();
        FLParameter b = new FLParameter();
        assertNotEquals(a.getClientID(), b.getClientID());
        assertSame(FLParameter.getInstance(), FLParameter.getInstance());
        a.setBatchSize(8);
        assertNull(b.getBatchSize(), "unset: the model's batch");
    }

    @Test
    void seedsPositionalArgumentsFillTheirFields() throws Exception {
        Fixture fx = new Fixture(tmp, "c");
        String[] args = {fx.trainData + "," + fx.trainLabel, fx.evalData + "," + fx.evalLabel, fx.evalData + "," + fx.evalLabel,
            ",", LinearClient.class.getName(), fx.model.toString(), fx.model.toString(), "TLSv1.3", "x86",
            "http://10.0.0.1:6668", "cert/CARoot.pem", "true", "4", "train", "2", "NOT_BINDING_CORE", "null", "null", ",",
            "FEDERATED_LEARNING", "4", "null"};
        JobArgs a = JobArgs.parse(args);
        FLParameter p = a.parameter();
        assertEquals("train", a.task());
        assertEquals(List.of(fx.trainData.toString(), fx.trainLabel.toString()), p.getDataMap().get(RunType.TRAINMODE));
        assertEquals(List.of(fx.evalData.toString(), fx.evalLabel.toString()), p.getDataMap().get(RunType.EVALMODE));
        assertEquals(LinearClient.class.getName(), p.getFlName());
        assertEquals(fx.model.toString(), p.getTrainModelPath());
        assertEquals("TLSv1.3", p.getSslProtocol());
        assertEquals("http://10.0.0.1:6668", p.getDomainName());
        assertNull(p.getCertPath(), "certPath only matters for https");
        assertTrue(p.isUseElb());
        assertEquals(4, p.getServerNum());
        assertEquals(2, p.getThreadNum());
        assertEquals(4, p.getBatchSize());
    }

    @Test
    void keyValueArgumentsAcceptCamelAndSnakeCase() throws Exception {
        Fixture fx = new Fixture(tmp, "c");
        JobArgs a = JobArgs.parse(new String[] {"--task", "inference", "--flName", LinearClient.class.getName(),
            "--train_model_path", fx.model.toString(), "--inferData", fx.evalData.toString(), "--batchSize=4",
            "--domain_name", "http://127.0.0.1:6666", "--clientID", "f7", "--logPath", tmp.resolve("x.log").toString(),
            "--maxRetries", "5", "--retry_timeout", "600", "--sleepTime", "10", "--timeOut", "3"});
        FLParameter p = a.parameter();
        assertEquals("inference", a.task());
        assertEquals(List.of(fx.evalData.toString()), p.getDataMap().get(RunType.INFERMODE));
        assertFalse(p.getDataMap().containsKey(RunType.TRAINMODE));
        assertEquals("f7", p.getClientID());
        assertEquals(5, p.getMaxRetries());
        assertEquals(600, p.getRetryTimeout());
        assertEquals(10, p.getSleepTime());
        assertEquals(3, p.getTimeOut());
        assertEquals(4, p.getBatchSize());
    }

    @Test
    void badCommandLinesSayWhatIsWrong() {
        assertTrue(messageOf(() -> JobArgs.parse(new String[] {"--colour", "red"})).contains("unknown option --colour"));
        assertTrue(messageOf(() -> JobArgs.parse(new String[] {"--useElb", "yes"})).contains("true or false"));
        assertTrue(messageOf(() -> JobArgs.parse(new String[] {"--serverNum"})).contains("needs a value"));
        assertTrue(messageOf(() -> JobArgs.parse(new String[] {"a", "b"})).contains("21 or 22"));
    }
}
