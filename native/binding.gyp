{
  "targets": [
    {
      "target_name": "berth_native",
      "sources": ["src/berth_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
