"""BasicSR's SingleImageDataset, with the folder screened first so a bad file never kills a test run."""
from basicsr.data.single_image_dataset import SingleImageDataset
from basicsr.utils import get_root_logger
from basicsr.utils.registry import DATASET_REGISTRY

from sclle_basicsr.data.image_checks import screen_image_paths
from sclle_basicsr.utils.image_files import list_images, walk_files


@DATASET_REGISTRY.register()
class CheckedSingleImageDataset(SingleImageDataset):
    """SingleImageDataset (same options and outputs) that skips, and logs by name, every file it cannot use.

    BasicSR's dataset reads every file of ``dataroot_lq`` with OpenCV: a stray text file or a truncated image ends
    the run with an ``AttributeError`` from a worker, and a truncated JPEG is silently grey-filled.  Here each file
    is decoded once when the dataset is built (``check_images: false`` turns this off): non-images and undecodable
    files are skipped with a warning, grayscale images are replicated to RGB and alpha channels ignored, each noted
    in the log.  An empty or unreadable folder is an error naming it.

    A folder on disk is listed by :mod:`sclle_basicsr.utils.image_files` (sorted, hidden files such as ``._x.png``
    skipped), so that the runner reads the images Table 1's identity row scores.
    """

    def __init__(self, opt):
        super().__init__(opt)
        check = opt.get('check_images', True)
        disk = self.io_backend_opt['type'] == 'disk'
        if disk and 'meta_info_file' not in opt:  # non-images stay in for the screening to name them
            self.paths = walk_files(self.lq_folder) if check else list_images(self.lq_folder)
        if check and disk:
            self.paths = screen_image_paths(self.paths, self.lq_folder, 'dataroot_lq', get_root_logger())
