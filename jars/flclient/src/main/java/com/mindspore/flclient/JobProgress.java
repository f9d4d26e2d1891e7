package com.mindspore.flclient;

import java.util.List;
import java.util.Map;

/**
 * Where one job stands in the server's plan, and what a waiting client keeps between two
 * steps: a few numbers and names, never the model or the data (the model file is the state).
 * The plan itself is not here: it is a {@link Plan}, handed to the steps of its round.
 */
final class JobProgress {
    /** The iteration startFLJob admitted this client to. */
    int iteration;
    /** The server's iteration in the newest refusal of startFLJob (0: none yet). */
    int refusedIn;
    /** The latest plan's iterations: the job is done when {@link #iteration} reaches it. */
    int iterations;
    /** Training and evaluation samples, read once when the job starts (data_size of startFLJob). */
    int dataSize;
    int evalSamples;
    /** Names of the weights the server sent in startFLJob: exactly these are uploaded. */
    List<String> serverWeightNames = List.of();
    /** The weights of startFLJob, from admission until training has set them (then dropped). */
    Map<String, float[]> admittedWeights;
    /** The compressed upload waiting for the server's answer: its error-feedback residual is kept once accepted. */
    UploadCodec.Encoded pendingUpload;
    /** After OutOfTime or "not selected": epoch milliseconds at which to ask again. */
    String nextReqTime = "";
    /** Iteration of the last model received, for the standalone getModel. */
    int lastModelIteration;
    /** The case's model is the .ms runtime's (its file can be patched without loading it). */
    boolean runtimeModel;
    /** Iterations this client took part in (its upload accepted and the model received). */
    int participated;

    /** The log's words for a client the job ended without: the same in every step that finds it so. */
    String notSelectedAnyMore() {
        return "this client is not selected any more (it took part in " + participated + " iteration(s))";
    }
}
