"""README.md and docs/: every relative link and anchor resolves; every tool, config and tool flag
they name exists."""
import glob
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = [os.path.join(REPO, 'README.md')] + sorted(
    glob.glob(os.path.join(REPO, 'docs', '**', '*.md'), recursive=True))
LINK = re.compile(r'!?\[([^\]]*)\]\(([^)\s]+)\)')


def prose_and_code(path):
    """(text outside code blocks, text inside code blocks and inline code)."""
    with open(path) as f:
        text = f.read()
    blocks = re.findall(r'```.*?```', text, re.S)
    prose = re.sub(r'```.*?```', '', text, flags=re.S)
    return prose, blocks + re.findall(r'`[^`\n]+`', prose)


def slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def test_slug_follows_github():
    assert slug('Multi-scale + flip testing') == 'multi-scale--flip-testing'
    assert slug('Compiled ops (`csrc/`)') == 'compiled-ops-csrc'
    assert slug('Inference: fused post-processing') == 'inference-fused-post-processing'


def anchors(path):
    prose, _ = prose_and_code(path)
    return {slug(line.lstrip('#')) for line in prose.splitlines() if re.match(r'#{1,6} ', line)}


def test_docs_tree_is_mmseg_like():
    expected = ['docs/en/index.md', 'docs/en/get_started.md', 'docs/en/model_zoo.md',
                'docs/en/changelog.md', 'docs/en/advanced_guides/ops.md',
                'docs/en/advanced_guides/cuda_build.md', 'docs/en/advanced_guides/benchmarks.md']
    for path in expected:
        assert os.path.exists(os.path.join(REPO, path)), path
    assert len(glob.glob(os.path.join(REPO, 'docs/en/user_guides/*.md'))) == 9
    with open(os.path.join(REPO, 'README.md')) as f:
        assert len(f.read().splitlines()) <= 200


@pytest.mark.parametrize('path', DOCS, ids=[os.path.relpath(p, REPO) for p in DOCS])
def test_links_and_anchors_resolve(path):
    prose, _ = prose_and_code(path)
    broken = []
    for _, target in LINK.findall(prose):
        if target.startswith(('http://', 'https://', 'mailto:')):
            continue
        file_part, _, anchor = target.partition('#')
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) \
            if file_part else path
        if not os.path.exists(resolved):
            broken.append(f'{target}: no file {os.path.relpath(resolved, REPO)}')
        elif anchor and resolved.endswith('.md') and anchor not in anchors(resolved):
            broken.append(f'{target}: no heading #{anchor} in {os.path.relpath(resolved, REPO)}')
    assert not broken, broken


def tool_flags(tool):
    """The --flags a tool's argparse parser defines (read from its source)."""
    with open(os.path.join(REPO, tool)) as f:
        return set(re.findall(r"""['"](--[a-z][a-z0-9-]*)['"]""", f.read()))


@pytest.mark.parametrize('path', DOCS, ids=[os.path.relpath(p, REPO) for p in DOCS])
def test_named_tools_configs_and_flags_exist(path):
    _, code = prose_and_code(path)
    with open(path) as f:
        text = f.read()
    missing = []
    for tool in set(re.findall(r'(?<![\w/.])tools/[a-z_]+\.(?:py|sh)', text)):
        if not os.path.exists(os.path.join(REPO, tool)):
            missing.append(tool)
    for config in set(re.findall(r'(?<![\w/.])configs/[\w/.\-]+\.py', text)):
        # configs/my_*.py: the copies the guides tell users to make
        if not os.path.basename(config).startswith('my_') and \
                not os.path.exists(os.path.join(REPO, config)):
            missing.append(config)
    # Command lines (continuations joined) that run a Python tool: their flags are the tool's.
    for snippet in code:
        for line in snippet.replace('\\\n', ' ').splitlines():
            for tool, rest in re.findall(r'(tools/[a-z_]+\.py)((?:\s+[^\s|;&#]+)*)', line):
                if not os.path.exists(os.path.join(REPO, tool)):
                    continue
                flags = set(re.findall(r'(?<![\w-])(--[a-z][a-z0-9-]*)', rest))
                missing += [f'{tool} {flag}' for flag in flags - tool_flags(tool)]
    assert not missing, missing
