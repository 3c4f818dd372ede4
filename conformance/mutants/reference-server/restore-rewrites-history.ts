import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "restore-rewrites-history",
  area: "RESTORE",
  caughtBy: ["restore.appends-whatever-the-conflict-policy"],
  description: "Restore truncates history to the checkpoint instead of appending compensating deltas.",
  edits: [
    {
      file: "store/types.ts",
      find: "  compactStream(input: CompactInput): Promise<CompactResult>;\n",
      replace:
        "  compactStream(input: CompactInput): Promise<CompactResult>;\n" +
        "  /** Deletes every delta above `version` and moves the head back to it. */\n" +
        "  rewindStream(subjectId: string, streamId: string, version: number, stateAtVersion: Uint8Array, now: Date): Promise<void>;\n",
    },
    {
      file: "store/sqlite/sqlite-store.ts",
      find: "    async createCheckpoint(input: CreateCheckpointInput): Promise<CreateCheckpointResult> {\n",
      replace:
        "    async rewindStream(subjectId, streamId, version, stateAtVersion, now) {\n" +
        "      write(() => {\n" +
        "        const row = streamRow(subjectId, streamId);\n" +
        "        if (row === undefined || version >= row.head_version || version < row.horizon_version) return;\n" +
        "        const hash = hashAt(row, version);\n" +
        '        stmt("DELETE FROM deltas WHERE stream_key = (SELECT stream_key FROM stream_keys WHERE subject_id = ? AND stream_id = ?) AND version > ?").run(subjectId, streamId, version);\n' +
        '        stmt("DELETE FROM json_states WHERE subject_id = ? AND stream_id = ? AND version > ?").run(subjectId, streamId, version);\n' +
        "        stmt(\n" +
        '          "UPDATE streams SET head_version = ?, head_hash = ?, head_state = ?, updated_at = ? WHERE subject_id = ? AND stream_id = ?",\n' +
        "        ).run(version, hash, stateAtVersion, now.getTime(), subjectId, streamId);\n" +
        "      });\n" +
        "    },\n" +
        "\n" +
        "    async createCheckpoint(input: CreateCheckpointInput): Promise<CreateCheckpointResult> {\n",
    },
    {
      file: "services/checkpoint-service.ts",
      find:
        "        const name = streamName(stream.subjectId, stream.id);\n" +
        "        const result = await appendCompensation(stream, target, deviceId);\n",
      replace:
        "        const name = streamName(stream.subjectId, stream.id);\n" +
        "        await store.rewindStream(stream.subjectId, stream.id, entry.version, canonicalJson(target), deps.clock());\n" +
        "        restored.push({ stream: name, version: 0n, headHash: Buffer.from(entry.headHash) });\n" +
        "        continue;\n" +
        "        const result = await appendCompensation(stream, target, deviceId);\n",
    },
  ],
});
