#!/usr/bin/env bash
# Benchmark: CRC-32 throughput of zlib's crc32() against libdeflate's
# libdeflate_crc32() (the two Debian libraries that offer one), on one
# 256 MiB buffer in memory, best of 7 runs each. vitport checks the CRC-32 of
# every zip member a conversion reads with the faster one.
# Usage: bench/bench_crc.sh [MIB]
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
cc -O2 -o bench/out/crc_speed bench/crc_speed.c $(pkg-config --cflags --libs zlib libdeflate)
bench/out/crc_speed "${1:-256}"
