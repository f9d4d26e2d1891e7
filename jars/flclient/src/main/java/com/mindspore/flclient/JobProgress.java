package com.mindspore.flclient;

import java.util.List;

/**
 * Where one job stands in the server's plan: written by the startFLJob and getModel steps,
 * read by the other steps and by the {@link RoundLoop} that decides whether to go on.
 */
final class JobProgress {
    /** The iteration startFLJob admitted this client to. */
    int iteration;
    /** The plan's iterations: the job is done when {@link #iteration} reaches it. */
    int iterations;
    /** Local epochs of the plan. */
    int epochs;
    /** Names of the weights the server sent in startFLJob: exactly these are uploaded. */
    List<String> serverWeightNames = List.of();
    /** After OutOfTime or "not selected": epoch milliseconds at which to ask again. */
    String nextReqTime = "";
    /** Iteration of the last model received, for the standalone getModel. */
    int lastModelIteration;
}
