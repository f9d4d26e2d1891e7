package com.mindspore.flclient;

import com.mindspore.flclient.cases.JobContext;

import java.util.ArrayList;
import java.util.logging.Logger;

import mindspore.schema.ResponseCode;

/**
 * startFLJob: asks to join the current iteration with the number of training samples; once
 * admitted, decodes the plan once ({@link Plan#decode}: it can be followed or the job ends) and
 * keeps the weights for training. Model and data are not loaded here: an
 * admitted client loads them when it gets its training permit ({@link TrainStep}).
 */
final class StartFLJobStep {
    private final FLParameter p;
    private final Logger log;
    private final ServerExchange server;
    private final JobContext context;
    private final JobProgress progress;

    StartFLJobStep(FLParameter p, Logger log, ServerExchange server, JobContext context, JobProgress progress) {
        this.p = p;
        this.log = log;
        this.server = server;
        this.context = context;
        this.progress = progress;
    }

    /** What follows startFLJob: the round's status and, when admitted (SUCCESS), its plan. */
    interface Then {
        Next apply(FLClientStatus status, Plan plan);
    }

    /**
     * Then SUCCESS with the decoded plan when admitted; RESTART when to come back at next_req_time;
     * NOT_SELECTED when the server's job ended while this client waited; FAILED otherwise (a plan
     * this client cannot follow included).
     */
    Next run(Then then) {
        byte[] body = FLMessages.requestFLJob(p.getFlName(), p.getClientID(), progress.iteration, progress.dataSize);
        log.info("[startFLJob] request startFLJob with data_size " + progress.dataSize);
        return server.exchange("startFLJob", body, FLMessages::parseStartFLJob, ServerExchange.NotReady.WAIT,
                true, r -> {
                    Plan plan = admit(r);
                    return then.apply(plan != null ? FLClientStatus.SUCCESS : refusal(r), plan);
                });
    }

    /** The plan of a reply that admits this client (decoded and checked), else null. */
    private Plan admit(FLMessages.Response r) {
        if (r == null || r.kind != FLMessages.Kind.REPLY || r.retcode != ResponseCode.SUCCEED || !r.isSelected
                || r.plan == null || r.featureMap.isEmpty()) {
            return null;
        }
        Plan plan;
        try {
            plan = Plan.decode(r.plan, r.controlVariate);
        } catch (IllegalArgumentException e) {
            log.severe("[startFLJob] " + e.getMessage() + "; this client cannot follow it, the job ends");
            return null;
        }
        log.info("[startFLJob] get response from server ok!");
        progress.iteration = r.iteration;
        progress.iterations = plan.iterations;
        context.setIteration(r.iteration);
        log.info("[startFLJob] startFLJob succeed, curIteration: " + r.iteration);
        log.info("[startFLJob] plan: " + plan);
        progress.admittedWeights = r.featureMap;
        progress.serverWeightNames = new ArrayList<>(r.featureMap.keySet());
        TrainListener.tell(p, log, r.iteration, "admitted", progress.dataSize);
        return plan;
    }

    /** Why a reply did not admit this client: RESTART, NOT_SELECTED or FAILED (logged). */
    private FLClientStatus refusal(FLMessages.Response r) {
        if (r == null) {
            return FLClientStatus.FAILED;
        }
        if (r.kind == FLMessages.Kind.FINISHED) {
            // the job ended without this client: not a failure of the device (retrying cannot admit it)
            log.info("[startFLJob] the server's job is finished: " + progress.notSelectedAnyMore());
            return FLClientStatus.NOT_SELECTED;
        }
        if (r.retcode == ResponseCode.OutOfTime || r.retcode == ResponseCode.NotSelected
                || (r.retcode == ResponseCode.SUCCEED && !r.isSelected)) {
            progress.nextReqTime = r.nextReqTime;
            progress.refusedIn = r.iteration;
            log.info("[startFLJob] not admitted now (" + r + "): come back at next_req_time " + r.nextReqTime);
            return FLClientStatus.RESTART;
        }
        if (r.retcode != ResponseCode.SUCCEED) {
            log.severe("[startFLJob] refused: " + r + "; the request is invalid for this server, the job ends");
            return FLClientStatus.FAILED;
        }
        if (r.plan == null) {
            log.severe("[startFLJob] the reply has no fl_plan_config; the server is not a FL server of this protocol");
            return FLClientStatus.FAILED;
        }
        if (r.featureMap.isEmpty()) {
            log.severe("[startFLJob] the reply carries no weights (feature_map is empty)");
            return FLClientStatus.FAILED;
        }
        return FLClientStatus.FAILED; // a plan this client cannot follow (admit logged why)
    }
}
