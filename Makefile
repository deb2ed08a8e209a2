# Everything runs from a virtual environment at .venv, created on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dlgrade-installed

.PHONY: install test demo bench bench-batch bench-shakespeare bench-cifar corpus clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

# Two test processes (one per core here): the grades are mostly the worker's and the verifier's
# start-up and small probes, so two at once finish about 1.3x sooner. A file's tests stay
# together, so a module's shared grade is made once.
TEST_JOBS ?= 2
test: $(STAMP)
	$(PY) -m pytest -n $(TEST_JOBS) --dist loadfile tests reference

demo: $(STAMP)
	$(VENV)/bin/grade examples/cs1678-hw4 --assignment cs1678-hw4 --out demo-out

bench: $(STAMP)
	$(PY) benchmarks/grade_bench.py --assignment cs1678-hw4 --submission reference/cs1678_hw4
	$(PY) benchmarks/grade_bench.py --assignment cs1678-hw4 --submission reference/cs1678_hw4 --self-check
	$(PY) benchmarks/grade_bench.py --assignment cs1678-hw4-extended --submission reference/cs1678_hw4
	$(PY) benchmarks/grade_bench.py --assignment cs1678-hw3 --submission reference/cs1678_hw3
	$(PY) benchmarks/grade_bench.py --assignment cs1699-hw5 --submission reference/cs1699_hw5
	$(PY) benchmarks/memory_task_calibration.py --seeds 5
	$(PY) benchmarks/grade_bench.py --assignment ece661-hw2 --submission tests/submissions/ece661_plain --only 'simplenn*' --only 'swish.*' --only 'l1.*' --only 'lr-decay.*' --only 'resnet20.*'
	$(PY) benchmarks/grade_bench.py --assignment dl-assignment2 --submission tests/submissions/dl2_plain --only 'lenet5.*' --only 'resnet18.*' --only 'activations.*'
	$(PY) benchmarks/smoke_calibration.py --seeds 5
	$(PY) benchmarks/cifar_pipeline_bench.py
	$(PY) benchmarks/writer_bench.py
	$(PY) benchmarks/isolation_bench.py

# grade batch on 100 generated cs1678-hw4 submissions (correct, broken and hostile ones): wall
# time, submissions per minute and peak memory with 1 and 2 jobs, and on a 2-worker Dask LocalCluster.
BATCH_COUNT ?= 100
bench-batch: $(STAMP)
	@mkdir -p bench-out
	$(PY) benchmarks/batch_bench.py --count $(BATCH_COUNT) --jobs 1 --jobs 2 --dask --json bench-out/batch.json

# ECE661 HW2 input pipelines: DataLoader + torchvision against the device-resident fast path
# (images per second of the ResNet-20 training step; a GPU when one is present).
bench-cifar: $(STAMP)
	@mkdir -p bench-out
	$(PY) benchmarks/cifar_pipeline_bench.py --json bench-out/cifar_pipeline.json

# The handout's character GRU: minutes per epoch on a GPU, hours on a 2-core CPU.
bench-shakespeare: $(STAMP)
	$(PY) benchmarks/shakespeare_bench.py --epochs 10

# Public student submissions graded and compared with a careful TA's verdicts (agreement and
# seconds per case). MIRROR holds one fetched snapshot per repository: see the corpus README.
CORPUS ?= ../shared/corpus
MIRROR ?= ../.mirror
corpus: $(STAMP)
	$(PY) $(CORPUS)/run_corpus.py --mirror $(MIRROR) --project $(CURDIR)

clean:
	rm -rf $(VENV) demo-out bench-out grade-out
