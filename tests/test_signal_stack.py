"""OpenVINO models released in creation order, then a signal with a Python handler: the process must run the handler
(it died of SIGSEGV when OpenVINO's CPU plugin left the thread on a freed alternate signal stack).  In a fresh
interpreter: the failure kills the process."""
import os
import subprocess
import sys
import textwrap

import pytest

from sclle_basicsr.inference.backends import runtime_problem

CASE = textwrap.dedent("""
    import faulthandler, gc, signal, sys
    import numpy as np
    from sclle_basicsr.archs.dcenet_arch import DCENet
    from sclle_basicsr.inference import backends
    from sclle_basicsr.inference.signal_stack import current_signal_stack
    if sys.argv[1] == 'faulthandler':
        faulthandler.enable()
    before = current_signal_stack()
    signal.signal(signal.SIGTERM, lambda *args: print('handled', flush=True))
    first, second = DCENet().eval(), DCENet().eval()
    x = np.random.rand(1, 3, 32, 32).astype(np.float32)
    run_first = backends.backend_for(first, 'openvino', 'cpu', 'fp32')
    run_second = backends.backend_for(second, 'openvino', 'cpu', 'fp32')
    run_first(x), run_second(x)
    assert current_signal_stack() == before, (current_signal_stack(), before)
    del run_first, first
    gc.collect()
    signal.raise_signal(signal.SIGTERM)
    del run_second, second
    gc.collect()
    signal.raise_signal(signal.SIGTERM)
    assert current_signal_stack() == before, (current_signal_stack(), before)
    print('done', flush=True)
""")


@pytest.mark.skipif(runtime_problem('openvino') is not None, reason='OpenVINO is not installed (extra [openvino])')
@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='the alternate signal stack is read through libc')
@pytest.mark.parametrize('faulthandler', ['faulthandler', 'no_faulthandler'])
def test_signals_after_openvino_models_are_released_in_creation_order(faulthandler):
    proc = subprocess.run([sys.executable, '-c', CASE, faulthandler], capture_output=True, text=True, timeout=300,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, f'exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}'
    assert proc.stdout.split() == ['handled', 'handled', 'done']
