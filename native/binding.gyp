{
  "targets": [
    {
      "target_name": "berth_native",
      "sources": ["src/berth_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lseccomp"]
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
