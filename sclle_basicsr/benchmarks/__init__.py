"""Benchmarks behind ``scripts/benchmark_inference.py`` and ``scripts/benchmark_training.py``.

* :mod:`.inference_paths`: the inference configurations raced (project backends, the released code's eager path,
  the runtimes called directly);
* :mod:`.inference_race`: the race itself, its targets and its table;
* :mod:`.rss_child`: one configuration run once in a fresh process, for its peak resident memory;
* :mod:`.training_step`: one SCL-LLE training step, the project's against the losses composed naively;
* :mod:`.memory` and :mod:`.machine`: peak memory and the machine description both benchmarks report.
"""
