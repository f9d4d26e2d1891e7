package com.mindspore.flclient;

/** NOT_ENCRYPT (and r1.6's empty encrypt_type): the upload in the clear. */
final class PlainUpload implements UploadProtection {
    /** The encrypt type of this class (schema/round_plugins.json). */
    static final String NAME = "NOT_ENCRYPT";

    private final FLParameter p;

    PlainUpload(FLParameter p) {
        this.p = p;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public byte[] body(Plan plan, int iteration, Upload upload) {
        return FLMessages.requestUpdateModel(p.getFlName(), p.getClientID(), iteration, upload);
    }
}
