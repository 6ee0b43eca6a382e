"""What the plugin adds around BasicSR's own train/test runners: option checks, the run-folder lock, stopping on
signals, prefetchers that close their workers, clear errors, and reading the training logs."""
