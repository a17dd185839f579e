"""run_worker, the benchmarks' launcher of row processes, on tiny scripts."""
import textwrap

from mmseg_maskformer.utils.benchmarking import REPO, run_worker

SCRIPT = textwrap.dedent('''
    import json, os, sys
    spec = json.loads(sys.argv[sys.argv.index('--worker') + 1])
    if spec['action'] == 'result':
        print('{"not": "the last"}')
        print('progress line')
        print(json.dumps(dict(doubled=2 * spec['value'], path=os.environ['PYTHONPATH'])))
    elif spec['action'] == 'fail':
        sys.exit('RuntimeError: the row failed here')
    elif spec['action'] == 'memory':
        raise MemoryError('std::bad_alloc: out of memory')
    else:
        import time
        time.sleep(30)
''')


def test_run_worker_returns_the_last_json_line_or_the_error(tmp_path):
    script = tmp_path / 'worker.py'
    script.write_text(SCRIPT)
    result = run_worker(str(script), dict(action='result', value=21), timeout=60)
    assert result['doubled'] == 42
    assert result['path'].split(':')[0] == REPO  # the row imports this checkout
    assert run_worker(str(script), dict(action='fail'), timeout=60) == dict(
        error='RuntimeError: the row failed here')
    assert run_worker(str(script), dict(action='memory'), timeout=60) == dict(error='out of memory')
    assert run_worker(str(script), dict(action='sleep'), timeout=1) == dict(error='timeout > 1 s')
