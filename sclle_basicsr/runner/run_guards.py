"""What :func:`~sclle_basicsr.runner.basicsr_runner.prepare_basicsr_runner` puts around BasicSR's runners before they
touch anything, and around the training loop:

* the options are checked (:mod:`.option_checks`) right after BasicSR parses them: a mistyped key or
  a wrong type is one error before any folder is made or archived;
* the run's folder (``experiments/<name>``, ``results/<name>`` for tests) is locked (:mod:`.run_lock`)
  before BasicSR would rename an existing one: a second run under one name is refused instead of archiving the
  folder the first is still writing into;
* training gets SIGINT / SIGTERM handling (:mod:`sclle_basicsr.runner.training_stop`) and prefetchers that close their
  data workers (:mod:`sclle_basicsr.runner.prefetchers`);
* errors of those kinds are one line without a traceback (:mod:`sclle_basicsr.utils.run_errors`).

Each replaces a name in ``basicsr.train`` / ``basicsr.test``, as the resume fixes do; BasicSR's modules themselves
are unchanged and nothing happens at import.
"""
from sclle_basicsr.runner.option_checks import check_options
from sclle_basicsr.runner.prefetchers import ClosingCPUPrefetcher, StoppableCUDAPrefetcher
from sclle_basicsr.runner.run_lock import hold_folder
from sclle_basicsr.runner.training_stop import STOP
from sclle_basicsr.utils.run_errors import install_one_line_errors


def _parse_and_guard(root_path, is_train):
    from basicsr.utils.options import parse_options
    opt, args = parse_options(root_path, is_train=is_train)
    check_options(opt, args.opt)
    if opt.get('rank', 0) == 0:  # the rank that makes (and archives) the folder
        folder = opt['path']['experiments_root' if is_train else 'results_root']
        hold_folder(folder, 'training run' if is_train else 'test run')
    if is_train:
        STOP.install(opt)
    return opt, args


def parse_training_options(root_path, is_train=True):
    """``basicsr.utils.options.parse_options`` for ``train_pipeline``, then the checks, the lock and the signals."""
    return _parse_and_guard(root_path, is_train)


def parse_test_options(root_path, is_train=False):
    """``basicsr.utils.options.parse_options`` for ``test_pipeline``, then the checks and the lock."""
    return _parse_and_guard(root_path, is_train)


def build_training_model(opt):
    """``basicsr.models.build_model``, remembering the model: a stop by signal saves it."""
    from basicsr.models import build_model
    STOP.model = build_model(opt)
    return STOP.model


def install_run_guards():
    """Install the above into BasicSR's runner modules (idempotent)."""
    import basicsr.test
    import basicsr.train
    basicsr.train.parse_options = parse_training_options
    basicsr.train.build_model = build_training_model
    basicsr.train.CPUPrefetcher = ClosingCPUPrefetcher
    basicsr.train.CUDAPrefetcher = StoppableCUDAPrefetcher
    ClosingCPUPrefetcher.before_batch = StoppableCUDAPrefetcher.before_batch = STOP.before_batch
    basicsr.test.parse_options = parse_test_options
    install_one_line_errors()
