# llmopt — top-level entry points. `make run` and `make test` work on a fresh Debian 12 machine:
# they install the missing apt packages first (with sudo when not root).

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
BUILD_FUZZ ?= build-fuzz
JOBS       ?= $(shell nproc)
MODEL      ?=
TOKENIZER  ?=
FUZZ_SECONDS ?= 60

APT_PACKAGES := build-essential cmake pkg-config libgtest-dev googletest nlohmann-json3-dev \
                libcli11-dev python3 python3-numpy python3-pip
FUZZ_PACKAGES := clang libclang-rt-14-dev

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build run test test-asan test-tsan fuzz clean format model models

all: build

# Installs only what is missing, so repeated runs cost nothing.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The default model, SmolLM2-135M-Instruct (Q4_1 GGUF), into .cache/models/ (pinned, sha256-checked).
model: deps
	./tools/fetch_model.sh

# The built-in draft of the default model, distilled by llmopt (models/smollm2-draft/): the target
# generates its distillation data, then the draft and a same-size plain baseline are trained. About
# 2 hours on 2 cores; see models/smollm2-draft/README.md.
models: build model
	@dpkg-query -W -f='$${Status}' fortunes 2>/dev/null | grep -q "install ok installed" || \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq fortunes; }
	./tools/make_draft.sh $(BUILD)

# The main job: the optimization story of the built-in default model, SmolLM2-135M-Instruct (fetched
# by `make model`), or of MODEL=path.
DEFAULT_MODEL := .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
DEFAULT_DRAFT := models/smollm2-draft/smollm2-draft.f16.gguf
run: build
	@if [ -z "$(MODEL)" ]; then $(MAKE) --no-print-directory model; fi
	./$(BUILD)/llmopt demo -m $(if $(MODEL),$(MODEL),$(DEFAULT_MODEL)) $(if $(TOKENIZER),--tokenizer $(TOKENIZER),) \
	  $(if $(MODEL),,$(if $(wildcard $(DEFAULT_DRAFT)),--draft $(DEFAULT_DRAFT),))

# Every test: the Release suite, then the parsers, tokenizers, KV block pool, scheduler and quantizers
# again under ASan/UBSan.
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory test-tsan

test-asan: deps
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DLLMOPT_SANITIZE=ON -DLLMOPT_TESTS_BUILD_CLI=OFF >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS) --target test_formats test_tokenizer test_runtime test_quant test_train test_kernels
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) -R '^(Gguf|Safetensors|Llama2c|Tokenizer|Bpe|Spm|Metadata|BadInput|BlockPool|KvManager|Scheduler|Affine|RoundTrip|Gptq|Hessian|Linalg|SmoothQuant|W8A8|Metrics|DistillData|DistillLoss|QTune|KernelsI8Ch|KernelsOps|Kernels/KernelsFastMatmul|KernelsMatmulMulti|KernelsFusedProducts|SamplerChain)'

# The threaded parts under ThreadSanitizer: the thread pool's hand-off, and the multi-threaded matmul
# (with its per-thread GELU / SwiGLU epilogues) and attention kernels on every ISA.
test-tsan: deps
	cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLMOPT_TSAN=ON -DLLMOPT_TESTS_BUILD_CLI=OFF >/dev/null
	cmake --build $(BUILD_TSAN) -j $(JOBS) --target test_core test_kernels
	cd $(BUILD_TSAN) && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j $(JOBS) -R '(CoreThreadPool|KernelsFastMatmul|KernelsOps|KernelsI8Ch|KernelsFusedProducts)'

# libFuzzer over the GGUF and safetensors parsers, FUZZ_SECONDS each.
fuzz: deps
	@for p in $(FUZZ_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(FUZZ_PACKAGES); break; }; done
	CC=clang CXX=clang++ cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLMOPT_FUZZ=ON -DLLMOPT_TESTS=OFF >/dev/null
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target fuzz_gguf fuzz_safetensors fuzz_distill
	mkdir -p $(BUILD_FUZZ)/corpus_gguf $(BUILD_FUZZ)/corpus_safetensors $(BUILD_FUZZ)/corpus_distill
	./$(BUILD_FUZZ)/fuzz/fuzz_gguf -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 $(BUILD_FUZZ)/corpus_gguf fuzz/seeds/gguf
	./$(BUILD_FUZZ)/fuzz/fuzz_safetensors -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 $(BUILD_FUZZ)/corpus_safetensors fuzz/seeds/safetensors
	./$(BUILD_FUZZ)/fuzz/fuzz_distill -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 $(BUILD_FUZZ)/corpus_distill fuzz/seeds/distill

format:
	find src tests fuzz -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
