# make demo  — set up, then train + evaluate the tiny MaskFormer on the built-in data
# make test  — set up, then run the test suite
# make check-install — every install route in a fresh venv (what CI runs after make test)
PYTHON := .venv/bin/python
# make check-cuda: the venv holding a CUDA build of torch (created on first use)
CUDA_VENV ?= .venv-cuda
# make test: parallel test processes (the tests run single-threaded), one per core, at most 4
TEST_WORKERS ?= $(shell n=$$(nproc); [ $$n -gt 4 ] && n=4; echo $$n)

.PHONY: setup demo demo-baseline demo-panoptic demo-mask2former test check-install check-cuda benchmark clean

setup:
	bash tools/setup_env.sh

demo: setup
	bash tools/demo.sh configs/maskformer/maskformer_r18-tiny_1xb8-2k_shapes-128x128.py work_dirs/demo

demo-baseline: setup
	bash tools/demo.sh configs/fcn/fcn_r18-tiny-d8_1xb8-2k_shapes-128x128.py work_dirs/demo-fcn

demo-panoptic: setup
	bash tools/demo.sh configs/maskformer/maskformer_r18-tiny_1xb8-2k_shapes-panoptic-128x128.py work_dirs/demo-panoptic

demo-mask2former: setup
	bash tools/demo.sh configs/mask2former/mask2former_r18-tiny_1xb8-2k_shapes-128x128.py work_dirs/demo-mask2former

test: setup
	MMSEG_MASKFORMER_REQUIRE_EXTENSION=1 $(PYTHON) -m pytest tests -q -n $(TEST_WORKERS) --dist loadfile

# every install route (sdist, pip install ., -e, mim) in a fresh venv with only torch, the ops
# compiled on first use and compared with this build, and mim search / run / train / test
check-install: setup
	$(PYTHON) tools/check_install.py

check-cuda:
	$(shell test -x $(PYTHON) && echo $(PYTHON) || echo python3) tools/check_cuda_build.py --venv $(CUDA_VENV)

benchmark: setup
	$(PYTHON) tools/benchmark_ops.py

clean:
	rm -rf work_dirs build *.egg-info
