{
  "targets": [
    {
      "target_name": "berth_native",
      "sources": ["src/berth_native.c", "src/gunzip.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lseccomp", "-lisal"]
    },
    {
      "target_name": "berth-nsexec",
      "type": "executable",
      "sources": ["src/berth_nsexec.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "ldflags": ["-static"]
    }
  ]
}
