package com.mindspore.flclient;

/**
 * r1.6 result callback: told when an iteration of the round loop ends (successfully or not)
 * and when the whole job ends. Called on the client's own thread; an exception thrown here is
 * logged and does not stop the client.
 */
public interface IFLJobResultCallback {
    /**
     * @param modelName    the flName of the job
     * @param iterationSeq the server's iteration number of the round that ended
     * @param resultCode   the last response code of that round (200 = SUCCEED, 300 = OutOfTime, ...)
     */
    void onFlJobIterationFinished(String modelName, int iterationSeq, int resultCode);

    /**
     * @param modelName      the flName of the job
     * @param iterationCount the plan's number of iterations (0 when no plan was ever received)
     * @param resultCode     the last response code of the job
     */
    void onFlJobFinished(String modelName, int iterationCount, int resultCode);
}
