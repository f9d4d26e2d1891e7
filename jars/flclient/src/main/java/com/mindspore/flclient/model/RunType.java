package com.mindspore.flclient.model;

/** The three data sets a case can be given in {@link FLParameter#setDataMap}: train, evaluate, infer. */
public enum RunType {
    TRAINMODE, EVALMODE, INFERMODE
}
