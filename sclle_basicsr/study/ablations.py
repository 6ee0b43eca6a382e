"""Table 3's ablations, each stated once as the change it makes to a recipe's options.  The study applies them to
its CPU recipe; the option files ``options/train/train_SCLLLE_ablation_<name>.yml`` are the released recipe with
the same change (``tests/test_options.py`` checks each file against :func:`ablated`)."""
import copy
import os.path as osp

ABLATIONS = {  # name -> what the run leaves out (Table 3's row)
    'wo_Lc': 'without the contrastive loss L_c',
    'wo_Lsc': 'without the semantic brightness consistency loss L_sc',
    'wo_Lfr': 'without the feature retention loss L_fr',
    'wo_neg': 'without negatives (L_c pulls towards positives only)',
    'wo_over_neg': 'without over-exposed negatives',
    'wo_under_neg': 'without under-exposed negatives',
}
LOSS_LEFT_OUT = {'wo_Lc': 'contrastive_opt', 'wo_Lsc': 'semantic_opt', 'wo_Lfr': 'retention_opt'}
NEGATIVES_KEPT = {'wo_over_neg': 'under', 'wo_under_neg': 'over'}  # the negatives folder (by name) a run keeps


def ablated(opt, name):
    """A copy of ``opt`` with ablation ``name``'s change; ``opt['name']`` is left to the caller."""
    if name not in ABLATIONS:
        raise KeyError(f'unknown ablation {name!r}: choose from {", ".join(ABLATIONS)}')
    opt = copy.deepcopy(opt)
    train, train_set = opt['train'], opt['datasets']['train']
    if name in LOSS_LEFT_OUT:
        del train[LOSS_LEFT_OUT[name]]
    elif name == 'wo_neg':
        train_set['dataroot_neg'] = None
        train['contrastive_opt']['use_negatives'] = False
    else:
        kept = [d for d in train_set['dataroot_neg'] if osp.basename(osp.normpath(d)) == NEGATIVES_KEPT[name]]
        if len(kept) != 1:
            raise ValueError(f'{name}: datasets.train.dataroot_neg {train_set["dataroot_neg"]} has no single folder '
                             f'named {NEGATIVES_KEPT[name]!r} to keep')
        train_set['dataroot_neg'] = kept
    return opt
