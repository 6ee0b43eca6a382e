"""SCL-LLE as a BasicSR model: an SRModel whose training step is the paper's multi-task objective."""
import os
import os.path as osp
from collections import OrderedDict
from contextlib import nullcontext

import cv2
import torch
from basicsr.archs import build_network
from basicsr.metrics import calculate_metric
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY
from torch.nn.parallel import DistributedDataParallel

from sclle_basicsr.inference import enhance_tensor
from sclle_basicsr.inference.tiling import TILE_PAD
from sclle_basicsr.losses.scl_losses import SCLLosses
from sclle_basicsr.metrics import metric_inputs
from sclle_basicsr.metrics.unscorable import mean_or_nan, score_or_none, size_problem
from sclle_basicsr.models.atomic_checkpoints import AtomicCheckpointsMixin
from sclle_basicsr.models.training_setup import (
    amp_dtype,
    grad_scaler,
    refuse_data_parallel,
    set_deterministic,
    set_tf32,
    trust_dataset_label_checks,
)
from sclle_basicsr.utils.atomic_files import write_atomic
from sclle_basicsr.utils.checkpoints import InvalidWeightsError, check_weights


@MODEL_REGISTRY.register()
class SCLLLEModel(AtomicCheckpointsMixin, SRModel):
    """Unpaired low-light enhancement trained with L_c, L_sc, L_fr and L_cc (any subset, at least one).

    Testing and validation follow SRModel (images saved under its file names, metrics through ``calculate_metric``:
    NIQE needs no ground truth; PSNR/SSIM use ``gt`` when the dataset has one; a metric with an ``lq`` parameter,
    such as LOE, also gets the low-light input), with the enhancement itself run by
    the project's one inference path (:func:`sclle_basicsr.inference.enhance_tensor`): ``val`` options ``tile``,
    ``tile_pad``, ``precision`` (fp32 | bf16 | fp16), ``backend`` (auto | torch | onnxruntime | openvino; default:
    torch during training, whose weights change between validations, auto in the test runner).  Images are saved
    atomically, and an image a metric cannot score is named and left out of that metric's mean
    (:meth:`nondist_validation`).

    Training (``train:`` options): ``contrastive_opt``, ``semantic_opt``, ``retention_opt``, ``color_opt``,
    ``exposure_opt`` and the shared ``vgg_opt`` / ``segmentor_opt`` go to :class:`SCLLosses`, which owns the
    frozen networks; ``grad_clip_norm`` (0.1 in the released code), ``ema_decay``, ``amp: {dtype: bf16|fp16,
    init_scale}`` (the losses' own arithmetic stays float32), and on CUDA ``tf32`` and ``deterministic``
    (:mod:`sclle_basicsr.models.training_setup`).  One step is one
    forward of ``net_g`` that returns the image *and* its curve maps (``return_curves=True``), so the smoothness
    term needs no second forward.  Only ``net_g`` is wrapped by DDP; the frozen networks have no gradients to sync.
    Checkpoints and training states land whole or not at all (:class:`AtomicCheckpointsMixin`).
    """

    def model_to_device(self, net):
        """BaseModel's, except that DDP on CPU (gloo) gets no ``device_ids`` (BasicSR asks CUDA for one) and that
        DataParallel (``num_gpu`` > 1 without a launcher) is refused (:func:`refuse_data_parallel`)."""
        refuse_data_parallel(self.opt)
        if self.opt['dist'] and self.device.type == 'cpu':
            return DistributedDataParallel(net.to(self.device),
                                           find_unused_parameters=self.opt.get('find_unused_parameters', False))
        return super().model_to_device(net)

    # ---------------------------------------------------------------- loading
    def load_network(self, net, load_path, strict=True, param_key='params'):
        """SRModel's loader, with errors that name the file and the option instead of a bare KeyError."""
        if not osp.isfile(load_path):
            raise FileNotFoundError(f'Checkpoint {load_path} does not exist (set by path.pretrain_network_g).')
        try:
            super().load_network(net, load_path, strict, param_key)
        except KeyError as err:
            raise KeyError(f'Checkpoint {load_path} has no "{param_key}" or "params" entry. For a bare state_dict such '
                           'as the released SCL-LLE/Zero-DCE weights, set path.param_key_g: ~') from err
        except RuntimeError as err:
            raise RuntimeError(f'Checkpoint {load_path} does not fit {type(self.get_bare_model(net)).__name__} '
                               f'(network_g options {dict(self.opt["network_g"])}): {err}') from err
        try:  # NaN or Inf weights would give black or wrong images without a word
            check_weights(self.get_bare_model(net).state_dict().items())
        except InvalidWeightsError as err:
            raise InvalidWeightsError(f'Checkpoint {load_path} (path.pretrain_network_g): {err}') from err

    def test(self):
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.get_bare_model(self.net_g)
        val_opt = self.opt.get('val') or {}
        self.output = enhance_tensor(net, self.lq, tile=val_opt.get('tile', 0),
                                     tile_pad=val_opt.get('tile_pad', TILE_PAD),
                                     precision=val_opt.get('precision', 'fp32'),
                                     backend=val_opt.get('backend', 'torch' if self.is_train else 'auto'))
        if getattr(self, '_validation', None) is not None:
            self._save_and_score_output()

    # ---------------------------------------------------------------- validation: saved images and metrics
    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        """SRModel's loop (inference, progress) with each image saved and scored by :meth:`test` instead.

        Saved images are written atomically (a killed run leaves no partial PNG under SRModel's file name).  An
        image a metric cannot score is logged by name with the reason and left out of that metric's mean (the count
        is logged), instead of ending the run; a metric with no scored image is NaN.
        """
        metrics = self.opt['val'].get('metrics')
        dataset_name = dataloader.dataset.opt['name']
        if metrics is not None:
            self._initialize_best_metric_results(dataset_name)
        self._validation = {
            'dataset': dataset_name, 'iter': current_iter, 'save_img': save_img,
            # name -> (metric options, scores, paths of the images it cannot score)
            'metrics': {name: (metric_opt, [], []) for name, metric_opt in (metrics or {}).items()}}
        self.opt['val']['metrics'] = None  # SRModel's loop then runs inference only
        try:
            super().nondist_validation(dataloader, current_iter, tb_logger, save_img=False)
            results = self._validation['metrics']
        finally:
            self.opt['val']['metrics'] = metrics
            self._validation = None
        if metrics is None:
            return
        self.metric_results = {name: mean_or_nan(scores) for name, (_, scores, _) in results.items()}
        for name, value in self.metric_results.items():
            self._update_best_metric_result(dataset_name, name, value, current_iter)
        self._log_validation_metric_values(current_iter, dataset_name, tb_logger)
        for name, (_, scores, unscored) in results.items():
            if unscored:
                get_root_logger().warning(
                    f'{name} of {dataset_name}: {len(unscored)} of {len(scores) + len(unscored)} image(s) left out '
                    f'(cannot be scored, named above): {", ".join(osp.basename(p) for p in unscored)}')

    def _save_and_score_output(self):
        """Save (SRModel's file names) and score the current output as SRModel would: 8-bit from ``tensor2img``."""
        context = self._validation
        image = self.lq_paths[0] if self.lq_paths else '(no lq_path)'
        data = {'img': tensor2img([self.output.detach().cpu()])}
        if hasattr(self, 'gt'):
            data['img2'] = tensor2img([self.gt.detach().cpu()])
        if context['save_img']:
            self._save_visualization(data['img'], osp.splitext(osp.basename(image))[0], context)
        for name, (metric_opt, scores, unscored) in context['metrics'].items():
            inputs = metric_inputs(data, metric_opt, self.lq)  # plus the low-light input for metrics such as LOE
            value = score_or_none(name, lambda: calculate_metric(inputs, metric_opt), image, get_root_logger().warning,
                                  size_problem(metric_opt, data['img'].shape))
            if value is None:
                unscored.append(image)
            else:
                scores.append(value)

    def _save_visualization(self, img, img_name, context):
        if self.opt['is_train']:
            path = osp.join(self.opt['path']['visualization'], img_name, f'{img_name}_{context["iter"]}.png')
        else:
            suffix = self.opt['val'].get('suffix') or self.opt['name']
            path = osp.join(self.opt['path']['visualization'], context['dataset'], f'{img_name}_{suffix}.png')
        ok, png = cv2.imencode('.png', img)
        if not ok:
            raise OSError(f'PNG encoding failed for {path}')
        os.makedirs(osp.dirname(path), exist_ok=True)
        write_atomic(path, png.tobytes())

    # ---------------------------------------------------------------- training set-up
    def init_training_settings(self):
        self.net_g.train()
        train_opt = self.opt['train']
        log = get_root_logger().info
        set_deterministic(train_opt.get('deterministic'), log)  # first: before any CUDA matmul
        set_tf32(train_opt.get('tf32'), self.device, log)
        self._setup_ema(train_opt.get('ema_decay', 0))
        self.scl_losses = SCLLosses(train_opt).to(self.device)
        if trust_dataset_label_checks(self.scl_losses, self.opt):
            log('L_sc: label ids are checked by the training set when it reads them, not again on each step')
        self.grad_clip_norm = train_opt.get('grad_clip_norm')
        self._setup_amp(train_opt.get('amp'))
        self.setup_optimizers()
        self.setup_schedulers()

    def _setup_ema(self, decay):
        self.ema_decay = decay
        if decay <= 0:
            return
        get_root_logger().info(f'Use Exponential Moving Average with decay: {decay}')
        self.net_g_ema = build_network(self.opt['network_g']).to(self.device)
        path_opt = self.opt['path']
        if path_opt.get('pretrain_network_g') and path_opt.get('param_key_g', 'params') is not None:
            # a BasicSR checkpoint (also the one --auto_resume points at): its params_ema, else its params
            self.load_network(self.net_g_ema, path_opt['pretrain_network_g'], path_opt.get('strict_load_g', True),
                              'params_ema')
        else:  # no checkpoint, or a bare state_dict such as the released weights: start from net_g
            self.model_ema(0)
        self.net_g_ema.eval()

    def _setup_amp(self, amp_opt):
        """Mixed precision: bf16 or fp16 autocast (checked against the device by :func:`amp_dtype`); fp16 gets a
        GradScaler, whose state goes into the training state."""
        self.amp_dtype = amp_dtype(amp_opt, self.device, get_root_logger().warning)
        self.grad_scaler = grad_scaler(self.amp_dtype, self.device, amp_opt)

    # ---------------------------------------------------------------- training state
    def training_state_extras(self):
        """The GradScaler's state (loss scale, growth tracker) with fp16, so that a resumed run keeps its scale."""
        return {'grad_scaler': self.grad_scaler.state_dict()} if self.grad_scaler.is_enabled() else {}

    def resume_training(self, resume_state):
        """BasicSR's (optimizers, schedulers), plus the GradScaler's state when the state has one.

        A state without it (saved by a run without fp16, or by an older version) leaves the scaler at its initial
        scale, with a warning when this run uses fp16."""
        super().resume_training(resume_state)
        if not self.grad_scaler.is_enabled():
            return
        if 'grad_scaler' in resume_state:
            self.grad_scaler.load_state_dict(resume_state['grad_scaler'])
        else:
            get_root_logger().warning(
                f'The resumed training state (iteration {resume_state["iter"]}) holds no GradScaler state: the fp16 '
                f'loss scale starts again at {self.grad_scaler.get_scale():g}')

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # ---------------------------------------------------------------- one step
    def feed_data(self, data):
        super().feed_data(data)
        self.lq_paths = data.get('lq_path')
        self.pos = data['pos'].to(self.device) if 'pos' in data else None
        self.neg = [n.to(self.device) for n in data['neg']] if 'neg' in data else None
        self.label = data['label'].to(self.device) if 'label' in data else None

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad(set_to_none=True)
        with self._autocast():
            self.output, curves = self.net_g(self.lq, return_curves=True)
            l_total, loss_dict = self.scl_losses(
                self.output, lq=self.lq, curves=curves, pos=self.pos, neg=self.neg, label=self.label)
        self.grad_scaler.scale(l_total).backward()
        if self.grad_clip_norm:
            self.grad_scaler.unscale_(self.optimizer_g)
            torch.nn.utils.clip_grad_norm_(self.net_g.parameters(), self.grad_clip_norm)
        self.grad_scaler.step(self.optimizer_g)
        self.grad_scaler.update()

        loss_dict = OrderedDict(loss_dict)
        loss_dict['l_total'] = l_total
        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
