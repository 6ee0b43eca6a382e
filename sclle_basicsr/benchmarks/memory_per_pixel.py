"""Working memory per pixel of the inference configurations: the figures behind the memory budget's tile choice
(:mod:`sclle_basicsr.inference.memory_budget`).

Each configuration runs once per size in a fresh process (:mod:`.rss_child`), and its working memory is the peak
resident size minus the size before the run (model loaded, input image allocated).  Untiled at two sizes, the
slope is the bytes per pixel of a pass (activations and the output) and the intercept what a pass holds whatever
its size; tiled at a large size, what is left once the tile's share is taken out is the memory per image pixel that
tiling does not remove (the output array).
"""
from sclle_basicsr.benchmarks.inference_paths import CONFIGS, shape_for, unavailable_reason
from sclle_basicsr.benchmarks.inference_race import measure_rss
from sclle_basicsr.inference.tiling import TILE_PAD

MEMORY_CONFIGS = ('torch-fp32', 'torch-bf16', 'onnxruntime-fp32', 'openvino-fp32', 'openvino-bf16')


def working_bytes(name, mp, tile, threads, model_path=None):
    """Bytes the run of configuration ``name`` on a ``mp``-megapixel image adds to its process's peak RSS."""
    rss = measure_rss(name, mp, threads, tile, 0.0 if tile else 1e9, model_path)
    return (rss['peak_rss_mb'] - rss['rss_before_run_mb']) * 2**20


def pixels(mp):
    height, width = shape_for(mp)
    return height * width


def measure_memory_per_pixel(configs=MEMORY_CONFIGS, sizes=(1.0, 2.0), tiled_mp=12.0, tile=384, tile_pad=TILE_PAD,
                             threads=2, model_path=None, log=print):
    """``{config: {'bytes_per_pixel', 'fixed_bytes', 'untiled_bytes_per_pixel', 'io_bytes_per_pixel', ...}}``."""
    results = {}
    for name in configs:
        reason = unavailable_reason(name)
        if reason:
            log(f'{name}: skipped ({reason})')
            continue
        small, large = (working_bytes(name, mp, 0, threads, model_path) for mp in sizes)
        slope = (large - small) / (pixels(sizes[1]) - pixels(sizes[0]))
        fixed = small - slope * pixels(sizes[0])
        tiled = working_bytes(name, tiled_mp, tile, threads, model_path)
        io = max(0.0, (tiled - fixed - slope * (tile + 2 * tile_pad)**2) / pixels(tiled_mp))
        results[name] = {'precision': CONFIGS[name][1], 'bytes_per_pixel': round(slope),
                         'fixed_mib': round(fixed / 2**20), 'untiled_bytes_per_pixel': round(large / pixels(sizes[1])),
                         'io_bytes_per_pixel': round(io),
                         f'tiled_{tiled_mp:g}mp_mib': round(tiled / 2**20)}
        log(f'{name}: {results[name]}')
    return {'setting': {'sizes_mp': list(sizes), 'tiled_mp': tiled_mp, 'tile': tile, 'tile_pad': tile_pad,
                        'threads': threads}, 'results': results}
