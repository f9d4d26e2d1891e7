package com.mindspore.flclient;

import com.google.flatbuffers.FlatBufferBuilder;
import com.mindspore.flclient.compress.Codec;
import com.mindspore.flclient.runtime.schema.CompressionParameters;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import mindspore.schema.CompressFeatureMap;
import mindspore.schema.RequestFLJob;
import mindspore.schema.RequestUpdateModel;

/**
 * MindSpore Federated's compression fields on the device's messages (docs/compression.md): the
 * download codecs this client decodes (download_compress_types of RequestFLJob / RequestGetModel),
 * a QUANT model in a reply's compress_feature_map, and the fields of a DIFF_SPARSE_QUANT upload
 * (compress_feature_map, upload_compress_type, upload_sparse_rate, name_vec).
 */
final class CompressMessages {
    private CompressMessages() {
    }

    /** The download_compress_types vector: every compressed download codec {@link Codec} decodes. */
    static int downloadTypes(FlatBufferBuilder b) {
        return RequestFLJob.createDownloadCompressTypesVector(b, CompressionParameters.DOWNLOAD_DECODED);
    }

    /** Reads one reply's compress_feature_map entry. */
    interface Entries {
        CompressFeatureMap at(int i);
    }

    /**
     * The model of a reply whose download_compress_type is {@code type}: its {@code count} entries
     * dequantised into {@code out} (name → floats). Returns null, or why the reply cannot be read
     * (an unknown type, a nameless entry, a non-finite or inverted range).
     */
    static String readModel(String table, byte type, int count, Entries entries, Map<String, float[]> out) {
        if (type == CompressionParameters.DOWNLOAD_NO_COMPRESS) {
            return null;
        }
        if (type != CompressionParameters.DOWNLOAD_QUANT) {
            return table + ".download_compress_type " + type + ": this client decodes "
                    + CompressionParameters.DOWNLOAD_QUANT + " (QUANT) only";
        }
        List<Codec.Tensor> tensors = new ArrayList<>(count);
        Map<String, Integer> sizes = new java.util.LinkedHashMap<>();
        for (int i = 0; i < count; i++) {
            CompressFeatureMap fm = entries.at(i);
            String name = fm.weightFullname();
            if (name == null) {
                return table + ".compress_feature_map[" + i + "].weight_fullname: missing (a weight needs its name)";
            }
            ByteBuffer data = fm.compressDataAsByteBuffer();
            byte[] q = new byte[data == null ? 0 : data.remaining()];
            if (data != null) {
                data.get(q);
            }
            tensors.add(new Codec.Tensor(name, q, fm.minVal(), fm.maxVal()));
            sizes.put(name, q.length);
        }
        try {
            out.putAll(Codec.decodeModel(tensors, sizes));
        } catch (IllegalArgumentException e) {
            return table + "." + e.getMessage();
        }
        return null;
    }

    /**
     * A compressed updateModel's fields, written into {@code b} before the table starts: returns
     * {compress_feature_map offset, name_vec offset}.
     */
    static int[] writeUpload(FlatBufferBuilder b, List<Codec.Tensor> tensors, List<String> names) {
        int[] maps = new int[tensors.size()];
        for (int i = 0; i < maps.length; i++) {
            Codec.Tensor t = tensors.get(i);
            int data = CompressFeatureMap.createCompressDataVector(b, t.data);
            int name = b.createString(t.name);
            maps[i] = CompressFeatureMap.createCompressFeatureMap(b, name, data, t.min, t.max);
        }
        int[] nameOffsets = new int[names.size()];
        for (int i = 0; i < nameOffsets.length; i++) {
            nameOffsets[i] = b.createString(names.get(i));
        }
        return new int[] {RequestUpdateModel.createCompressFeatureMapVector(b, maps),
            RequestUpdateModel.createNameVecVector(b, nameOffsets)};
    }

    /** About the bytes a compressed upload takes in a buffer (the builder's first size). */
    static long bytes(UploadCodec.Encoded encoded) {
        long bytes = 0;
        for (Codec.Tensor t : encoded.tensors) {
            bytes += t.data.length + 64L + t.name.length();
        }
        return bytes;
    }

    /** Adds the upload's compression fields to the RequestUpdateModel being built. */
    static void addUpload(FlatBufferBuilder b, int[] written, byte type, float rate) {
        RequestUpdateModel.addCompressFeatureMap(b, written[0]);
        RequestUpdateModel.addNameVec(b, written[1]);
        RequestUpdateModel.addUploadCompressType(b, type);
        RequestUpdateModel.addUploadSparseRate(b, rate);
    }
}
