/**
 * A FlatBuffers verifier for Java, driven by the same {@code schema/*.fbs} files as the Python
 * one ({@code pyflclient/wire/verify.py}). The Java FlatBuffers runtime has no verifier: on a
 * truncated or hostile buffer its generated accessors read garbage or throw deep inside. Here
 * {@link com.mindspore.flclient.runtime.fb.FlatBufferVerifier} checks a buffer against a
 * {@link com.mindspore.flclient.runtime.fb.TableLayout} before any accessor reads it; the layouts
 * of every table are generated at build time into
 * {@code com.mindspore.flclient.runtime.schema.SchemaLayouts} by {@code schema/generate.py},
 * which parses the schemas with the Python verifier's own parser, so there is no hand-written
 * copy of the wire or model layout in either language.
 */
package com.mindspore.flclient.runtime.fb;
