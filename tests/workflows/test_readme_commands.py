"""Every command README.md and docs/ show is run by a test, or listed here with the reason it is
not.

The guides and the modules that run their commands on tiny data, asserting on outputs:
top (`make demo`: `tools/demo.sh`) test_demo_workflow.py; Use a released model
test_released_model.py; Training and testing and Multi-scale + flip testing
tests/integration/test_train_test_cli.py; Run a model on your images tests/tools/test_infer.py;
Train on your own data tests/tools/test_custom_dataset_template.py; Export to ONNX
tests/tools/test_export_onnx.py; Panoptic segmentation test_train_test_cli.py (train, test --out,
visualize); Ignore pixels test_ignore_workflow.py; Reliability
tests/integration/test_reliability_cli.py, tests/tools/test_check_dataset.py; `make test` is what
CI runs (.ci/run).
"""
import glob
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Commands README shows that no test runs, and why.
NOT_RUN = {
    'tools/setup_env.sh': 'make setup / make test run it: CI runs make test on a fresh clone',
    'tools/benchmark_ops.py': 'a benchmark (minutes per table); its results files record the '
                              'command and machine',
    'tools/benchmark_inference.py': 'a benchmark of R50 inference at up to 12 megapixels',
    'tools/long_run_check.py': '500 training iterations (6 minutes): a manual soak check',
    'tools/check_cuda_build.py': 'make check-cuda installs a CUDA build of torch (5 GB) in a '
                                 'second virtualenv',
    'tools/dist_test.sh': 'the same torch.distributed.run launch as dist_train.sh, which '
                          'tests/integration runs with 2 processes',
    'tools/make_shapes_dataset.py': 'run by tools/demo.sh in test_demo_workflow.py',
    'make benchmark': 'runs tools/benchmark_ops.py (above)',
    'make check-cuda': 'runs tools/check_cuda_build.py (above)',
    'make setup': 'part of make test, which CI runs',
    'make check-install': 'what CI runs after make test (.ci/run): runs tools/check_install.py',
    'tools/check_install.py': 'make check-install (CI): installs the package into a fresh '
                              'virtualenv by every route and compiles the ops there',
    'make test': 'what CI runs (.ci/run)',
    'make demo': 'tools/demo.sh with the demo config, run by test_demo_workflow.py (make demo '
                 'itself would train for 10 minutes)',
    'make demo-baseline': 'tools/demo.sh with the FCN config: 10 minutes of training; the config '
                          'builds and runs a forward in tests/configs',
    'make demo-panoptic': 'tools/demo.sh with the panoptic config: 10 minutes of training; its '
                          'train -> test --out -> visualize runs in test_train_test_cli.py',
    'make demo-mask2former': 'tools/demo.sh with the tiny Mask2Former config: 10 minutes of '
                             'training; its train -> test (and --tta) runs in '
                             'test_train_test_cli.py',
}


def readme_commands():
    """The tools and make targets named in the code blocks and inline code of README and docs/."""
    paths = [os.path.join(REPO, 'README.md')] + glob.glob(
        os.path.join(REPO, 'docs', '**', '*.md'), recursive=True)
    text = ''
    for path in paths:
        with open(path) as f:
            text += f.read() + '\n'

    code = ' '.join(re.findall(r'```.*?```', text, re.S) + re.findall(r'`[^`\n]+`', text))
    tools = set(re.findall(r'(?<![\w/])tools/[a-z_]+\.(?:py|sh)', code))  # not tests/tools/
    with open(os.path.join(REPO, 'Makefile')) as f:
        makefile_targets = set(re.findall(r'^([a-z][a-z0-9-]*):', f.read(), re.M))
    targets = {f'make {t}' for t in re.findall(r'\bmake ([a-z][a-z0-9-]*)\b', code)
               if t in makefile_targets}
    return tools | targets


def modules_of_the_suite():
    found = []
    for folder, _, files in os.walk(os.path.join(REPO, 'tests')):
        found += [os.path.join(folder, name) for name in files if name.endswith('.py')]
    return found


def runs_in_tests(command: str, sources) -> bool:
    """Whether a test module runs ``command``: its path in a subprocess call, or
    ``load_tool`` / ``run_in_process`` with its name."""
    name = os.path.splitext(os.path.basename(command))[0]
    patterns = [command, f"load_tool('{name}')", f"run_in_process('{name}'",
                f"os.path.join(REPO, 'tools', '{name}.py')", f"'tools', '{name}.py'"]
    for path in sources:
        if os.path.abspath(path) == os.path.abspath(__file__):
            continue
        with open(path) as f:
            text = f.read()
        if any(pattern in text for pattern in patterns):
            return True
    return False


def test_every_readme_command_is_run_by_a_test_or_says_why_not():
    commands = readme_commands()
    assert {'tools/train.py', 'tools/test.py', 'tools/infer.py', 'make demo'} <= commands
    sources = modules_of_the_suite()
    untested = sorted(c for c in commands - set(NOT_RUN) if not runs_in_tests(c, sources))
    assert not untested, f'README or docs/ show {untested}, which no test runs: test it or add a reason'


def test_reasons_name_commands_readme_still_shows():
    stale = sorted(set(NOT_RUN) - readme_commands())
    assert not stale, f'{stale} are no longer in README or docs/: remove them from NOT_RUN'
