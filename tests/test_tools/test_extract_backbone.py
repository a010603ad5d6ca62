import importlib.util
import os
import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision
from mmengine.registry import DefaultScope

from liftedcl_mm.utils import load_checkpoint_safely, register_safe_globals

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'model_converters', 'extract_backbone.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location('extract_backbone', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


eb = _load_tool()


def _resnet_state(depth=18, seed=0):
    from mmpose.models.backbones import ResNet
    torch.manual_seed(seed)
    model = ResNet(depth)
    # make BN statistics distinguishable from a fresh init
    for name, buf in model.named_buffers():
        if buf.is_floating_point():
            buf.uniform_(0.5, 1.5)
    return model.state_dict()


def _prefixed(state, prefix):
    return OrderedDict((prefix + k, v.clone()) for k, v in state.items())


def _liftedcl_checkpoint(path, query, key):
    state = OrderedDict()
    state.update(_prefixed(query, 'backbone.'))
    state['neck.mlp.0.weight'] = torch.randn(8, 512)
    state['equiv_neck.conv.0.weight'] = torch.randn(8, 512, 1, 1)
    state['lifting_head.fc.weight'] = torch.randn(51, 512)
    state['discriminator.fc.weight'] = torch.randn(1, 16)
    state.update(_prefixed(key, 'encoder_k.module.0.'))
    state['encoder_k.module.1.mlp.0.weight'] = torch.randn(8, 512)
    state['encoder_k.steps'] = torch.tensor(3)
    state['queue_inv.queue'] = torch.randn(8, 16)
    checkpoint = dict(
        meta=dict(epoch=1, iter=3, np_value=np.float64(1.0), arr=np.arange(3)),
        state_dict=state, message_hub=dict(x=np.ones(2)))
    torch.save(checkpoint, path)
    return checkpoint


def _moco_checkpoint(path, encoder_q, encoder_k, extra=True):
    state = OrderedDict()
    state.update(_prefixed(encoder_q, 'module.encoder_q.'))
    state.update(_prefixed(encoder_k, 'module.encoder_k.'))
    if extra:  # MoCo v2's MLP head replaces fc; LiftedCL adds more heads
        for enc in ('encoder_q', 'encoder_k'):
            state[f'module.{enc}.fc.0.weight'] = torch.randn(16, 512)
            state[f'module.{enc}.fc.0.bias'] = torch.randn(16)
            state[f'module.{enc}.fc.2.weight'] = torch.randn(8, 16)
        state['module.queue'] = torch.randn(8, 32)
        state['module.queue_ptr'] = torch.zeros(1, dtype=torch.long)
    torch.save(dict(epoch=200, arch='resnet50', state_dict=state,
                    optimizer={'state': {}, 'param_groups': []}), path)


def _assert_plain_tensor_file(path):
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
    # loads with a *default* weights_only torch.load, no allow-list needed
    state = torch.load(path, weights_only=True)
    assert isinstance(state, OrderedDict)
    assert all(torch.is_tensor(v) for v in state.values())
    return state


def _build_pose_model(depth, init_cfg):
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = dict(
        type='TopdownPoseEstimator',
        data_preprocessor=dict(type='PoseDataPreprocessor'),
        backbone=dict(type='ResNet', depth=depth, init_cfg=init_cfg),
        head=dict(type='HeatmapHead', in_channels=512 if depth < 50 else 2048, out_channels=17,
                  loss=dict(type='KeypointMSELoss', use_target_weight=True),
                  decoder=dict(type='MSRAHeatmap', input_size=(48, 64), heatmap_size=(12, 16),
                               sigma=2)))
    with DefaultScope.overwrite_default_scope('mmpose'):
        model = MODELS.build(cfg)
        model.init_weights()
    return model


def _assert_backbone_equals(model, expected):
    got = model.backbone.state_dict()
    assert set(got) == set(expected), (set(got) ^ set(expected))
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


def test_liftedcl_query_and_key_encoder(tmp_path):
    query, key = _resnet_state(18, seed=0), _resnet_state(18, seed=1)
    full = tmp_path / 'iter_3.pth'
    _liftedcl_checkpoint(full, query, key)
    out = tmp_path / 'backbone.pth'
    info = eb.convert(str(full), str(out))
    assert info['source'] == 'liftedcl' and info['prefix'] == 'backbone.'
    state = _assert_plain_tensor_file(out)
    assert list(state) == list(query)  # zero missing, zero unexpected, same order
    for k in query:
        assert torch.equal(state[k], query[k])

    out_k = tmp_path / 'key_backbone.pth'
    info = eb.convert(str(full), str(out_k), key_encoder=True)
    assert info['prefix'] == 'encoder_k.module.0.'
    state_k = torch.load(out_k)
    assert set(state_k) == set(key)
    assert all(torch.equal(state_k[k], key[k]) for k in key)
    assert not torch.equal(state_k['conv1.weight'], state['conv1.weight'])
    # no temporary files left next to the outputs
    assert sorted(os.listdir(tmp_path)) == ['backbone.pth', 'iter_3.pth', 'key_backbone.pth']

    # MMPose TopdownPoseEstimator loads the extracted file ...
    model = _build_pose_model(18, dict(type='Pretrained', checkpoint=str(out)))
    _assert_backbone_equals(model, query)
    # ... and the full checkpoint directly with prefix='backbone.' (needs our safe globals)
    register_safe_globals()
    model = _build_pose_model(
        18, dict(type='Pretrained', checkpoint=str(full), prefix='backbone.'))
    _assert_backbone_equals(model, query)


def test_moco_resnet50_real_shapes_into_mmpose_and_torchvision(tmp_path):
    torch.manual_seed(0)
    tv_q = torchvision.models.resnet50().state_dict()
    tv_k = {k: v + 1 if v.is_floating_point() else v for k, v in tv_q.items()}
    tv_q = OrderedDict((k, v) for k, v in tv_q.items() if not k.startswith('fc.'))
    tv_k = OrderedDict((k, v) for k, v in tv_k.items() if not k.startswith('fc.'))
    src = tmp_path / 'moco_v2_800ep_pretrain.pth.tar'
    _moco_checkpoint(src, tv_q, tv_k)
    out = tmp_path / 'r50.pth'
    info = eb.convert(str(src), str(out), source='auto')
    assert info['source'] == 'moco' and info['prefix'] == 'module.encoder_q.'
    assert info['dropped'] == ['fc']
    state = _assert_plain_tensor_file(out)
    assert set(state) == set(tv_q)

    # torchvision resnet50: only its classifier is missing
    tv_model = torchvision.models.resnet50()
    result = tv_model.load_state_dict(state, strict=False)
    assert sorted(result.missing_keys) == ['fc.bias', 'fc.weight']
    assert result.unexpected_keys == []
    # MMPose ResNet-50 inside a TopdownPoseEstimator
    model = _build_pose_model(50, dict(type='Pretrained', checkpoint=str(out)))
    _assert_backbone_equals(model, tv_q)

    out_k = tmp_path / 'r50_k.pth'
    eb.convert(str(src), str(out_k), key_encoder=True)
    state_k = torch.load(out_k)
    assert torch.equal(state_k['layer4.2.conv3.weight'], tv_k['layer4.2.conv3.weight'])


def test_plain_and_unprefixed_moco(tmp_path):
    tv = torchvision.models.resnet18().state_dict()
    src = tmp_path / 'tv.pth'
    torch.save(tv, src)
    out = tmp_path / 'out.pth'
    info = eb.convert(str(src), str(out))
    assert info['source'] == 'plain' and info['dropped'] == ['fc']
    assert set(torch.load(out)) == set(tv) - {'fc.weight', 'fc.bias'}
    # MoCo checkpoint saved without DataParallel's 'module.'
    state = {'encoder_q.' + k: v for k, v in tv.items()}
    torch.save({'state_dict': state}, src)
    info = eb.convert(str(src), str(out), source='moco')
    assert info['prefix'] == 'encoder_q.'


def test_refuses_non_resnet(tmp_path):
    from mmpretrain.models.backbones import VisionTransformer
    vit = VisionTransformer(arch='deit-tiny', img_size=32, patch_size=16)
    src = tmp_path / 'vit.pth'
    torch.save({'state_dict': _prefixed(vit.state_dict(), 'backbone.')}, src)
    out = tmp_path / 'out.pth'
    with pytest.raises(eb.NotAResNetError) as info:
        eb.convert(str(src), str(out))
    msg = str(info.value)
    assert 'vit.pth' in msg and 'backbone.*' in msg
    assert not out.exists()

    # ViT keys under the MoCo prefix, forced source
    torch.save({'state_dict': _prefixed(vit.state_dict(), 'module.encoder_q.')}, src)
    with pytest.raises(eb.NotAResNetError, match=r'module\.encoder_q\.conv1\.weight'):
        eb.convert(str(src), str(out), source='moco')

    # a random dict
    torch.save({'foo.weight': torch.zeros(3), 'bar': torch.ones(2, 2)}, src)
    with pytest.raises(eb.NotAResNetError, match=r'foo\.\* \(1\).*bar\.\* \(1\)'):
        eb.convert(str(src), str(out))

    # right prefix, but a truncated ResNet (no layer4) and a 1-channel stem
    state = _prefixed(_resnet_state(18), 'backbone.')
    state = OrderedDict((k, v) for k, v in state.items() if 'layer4' not in k)
    state['backbone.conv1.weight'] = torch.zeros(64, 1, 7, 7)
    torch.save({'state_dict': state}, src)
    with pytest.raises(eb.NotAResNetError) as info:
        eb.convert(str(src), str(out))
    assert 'no layer4.* weights' in str(info.value)
    assert '(64, 1, 7, 7)' in str(info.value)


def test_never_overwrites_input_and_cli(tmp_path):
    query = _resnet_state(18)
    full = tmp_path / 'full.pth'
    _liftedcl_checkpoint(full, query, query)
    before = full.read_bytes()
    with pytest.raises(ValueError, match='refusing to overwrite'):
        eb.convert(str(full), str(full))
    link = tmp_path / 'link.pth'
    os.symlink(full, link)
    with pytest.raises(ValueError, match='refusing to overwrite'):
        eb.convert(str(full), str(link))
    assert full.read_bytes() == before

    out = tmp_path / 'sub' / 'bb.pth'
    proc = subprocess.run(
        [sys.executable, TOOL, str(full), str(out), '--source', 'liftedcl'],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'backbone.' in proc.stdout and out.exists()
    assert set(load_checkpoint_safely(out)) == set(query)
    proc = subprocess.run([sys.executable, TOOL, str(tmp_path / 'missing.pth'), str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode != 0 and 'FileNotFoundError' in proc.stderr
    assert 'missing.pth' in proc.stderr


def test_stage1_mocov2_init_config(tmp_path):
    """Official MoCo v2 layout -> our converter -> the mocov2-init config's LiftedCL backbone."""
    from mmengine.config import Config

    from liftedcl_mm.registry import MODELS
    from liftedcl_mm.utils import register_all_modules
    torch.manual_seed(1)
    tv_q = OrderedDict((k, v) for k, v in torchvision.models.resnet50().state_dict().items()
                       if not k.startswith('fc.'))
    tv_k = OrderedDict((k, v + 1 if v.is_floating_point() else v) for k, v in tv_q.items())
    src = tmp_path / 'moco_v2_200ep_pretrain.pth.tar'
    _moco_checkpoint(src, tv_q, tv_k)
    out = tmp_path / 'mocov2_r50_imagenet_200e_backbone.pth'
    eb.main([str(src), str(out)])

    register_all_modules()
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'liftedcl_r50_coco_mocov2-init.py'))
    init = cfg.model.backbone.init_cfg
    assert init.type == 'Pretrained'
    assert osp.basename(init.checkpoint) == out.name
    init.checkpoint = str(out)
    cfg.model.prior.num_samples = 16
    model = MODELS.build(cfg.model)
    model.init_weights()
    got = model.backbone.state_dict()
    assert set(got) == set(tv_q)
    for key, value in tv_q.items():
        assert torch.equal(got[key], value), key
    # Only the backbone comes from Stage I: the heads keep their own (random) initialisation.
    assert model.lifting_head is not None and model.discriminator is not None


def _authors_heads(prefix, feat=2048, seed=0):
    """The non-ResNet modules of the LiftedCL authors' PoseResNet_Adv (moco/pose_res_adv.py)."""
    g = torch.Generator().manual_seed(seed)
    shapes = {
        'mlp_invariant.0.weight': (feat, feat), 'mlp_invariant.0.bias': (feat, ),
        'mlp_invariant.2.weight': (128, feat), 'mlp_invariant.2.bias': (128, ),
        'conv_variant.0.weight': (feat, feat, 1, 1), 'conv_variant.0.bias': (feat, ),
        'conv_variant.2.weight': (128, feat, 1, 1), 'conv_variant.2.bias': (128, ),
        'lifting.linear.0.weight': (512, 2048), 'lifting.linear.0.bias': (512, ),
        'lifting.res_1.model.0.weight': (512, 512), 'lifting.res_1.model.2.weight': (512, 512),
        'lifting.final.weight': (51, 512), 'lifting.final.bias': (51, ),
    }
    return OrderedDict((prefix + k, torch.randn(*s, generator=g) * 0.01)
                       for k, s in shapes.items())


def _authors_checkpoint(path, encoder_q, encoder_k, feat=2048, bare=False, legacy=True):
    """What the authors' train_adv.py saves: MoCo's save_checkpoint dict around the DDP model's
    state_dict (``bare``: the state dict alone, as their saved_models/moco_epoch_*.pth.tar)."""
    state = OrderedDict()
    for name, enc in (('encoder_q', encoder_q), ('encoder_k', encoder_k)):
        state.update(_prefixed(enc, f'module.{name}.'))
        state.update(_authors_heads(f'module.{name}.', feat))
    state['module.queue_inv'] = torch.randn(128, 64)
    state['module.queue_var'] = torch.randn(128, 64)
    state['module.queue_ptr'] = torch.zeros(1, dtype=torch.long)
    checkpoint = state if bare else dict(
        epoch=200, arch='resnet50', state_dict=state,
        optimizer_G={'state': {}, 'param_groups': [
            {'lr': 0.03, 'momentum': 0.9, 'dampening': 0, 'weight_decay': 1e-4,
             'nesterov': False, 'params': list(range(8))}]})
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)


def _is_legacy(path):
    import zipfile
    return not zipfile.is_zipfile(path)


def test_liftedcl_authors_release_into_mmpose_h36m_config(tmp_path):
    """The authors' layout (legacy torch format) -> backbone -> our H36M LiftedCL configs."""
    from mmengine.config import Config
    torch.manual_seed(2)
    tv_q = OrderedDict((k, v) for k, v in torchvision.models.resnet50().state_dict().items()
                       if not k.startswith('fc.'))
    tv_k = OrderedDict((k, v + 1 if v.is_floating_point() else v) for k, v in tv_q.items())
    src = tmp_path / 'checkpoint.pth.tar'
    _authors_checkpoint(src, tv_q, tv_k)
    assert _is_legacy(src)
    out = tmp_path / 'liftedcl_r50_backbone.pth'
    info = eb.convert(str(src), str(out))
    assert info['source'] == 'liftedcl-authors' and info['prefix'] == 'module.encoder_q.'
    assert info['dropped'] == ['mlp_invariant', 'conv_variant', 'lifting']
    state = _assert_plain_tensor_file(out)
    assert list(state) == list(tv_q)
    assert all(torch.equal(state[k], tv_q[k]) for k in tv_q)

    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    for name in ('simplebaseline_res50_h36m-256x256_liftedcl.py',
                 'rle3d_res50_h36m-256x256_liftedcl.py'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', 'mmpose', name))
        cfg.model.backbone.init_cfg.checkpoint = str(out)
        with DefaultScope.overwrite_default_scope('mmpose'):
            model = MODELS.build(cfg.model)
            model.init_weights()
        _assert_backbone_equals(model, tv_q)

    out_k = tmp_path / 'key.pth'
    info = eb.convert(str(src), str(out_k), key_encoder=True)
    assert info['prefix'] == 'module.encoder_k.'
    assert torch.equal(torch.load(out_k)['layer4.2.conv3.weight'], tv_k['layer4.2.conv3.weight'])


@pytest.mark.parametrize('legacy', [True, False])
def test_layouts_are_told_apart_and_reported(tmp_path, legacy, capsys):
    query, key = _resnet_state(18, seed=0), _resnet_state(18, seed=1)
    files = {
        'liftedcl-authors': tmp_path / 'checkpoint.pth.tar',
        'liftedcl-authors-bare': tmp_path / 'moco_epoch_199.pth.tar',
        'moco': tmp_path / 'moco_v2_200ep_pretrain.pth.tar',
    }
    _authors_checkpoint(files['liftedcl-authors'], query, key, feat=512, legacy=legacy)
    _authors_checkpoint(files['liftedcl-authors-bare'], query, key, feat=512, bare=True,
                        legacy=legacy)
    # the official MoCo v2 layout, as main_moco.py's save_checkpoint writes it
    state = OrderedDict()
    for name, enc in (('encoder_q', query), ('encoder_k', key)):
        state.update(_prefixed(enc, f'module.{name}.'))
        state[f'module.{name}.fc.0.weight'] = torch.randn(512, 512)
        state[f'module.{name}.fc.0.bias'] = torch.randn(512)
        state[f'module.{name}.fc.2.weight'] = torch.randn(128, 512)
        state[f'module.{name}.fc.2.bias'] = torch.randn(128)
    state['module.queue'] = torch.randn(128, 64)
    state['module.queue_ptr'] = torch.zeros(1, dtype=torch.long)
    torch.save(dict(epoch=200, arch='resnet50', state_dict=state,
                    optimizer={'state': {}, 'param_groups': [{'lr': 0.0, 'params': [0, 1]}]}),
               files['moco'], _use_new_zipfile_serialization=not legacy)
    for kind, src in files.items():
        assert _is_legacy(src) == legacy
        out = tmp_path / f'{kind}.pth'
        eb.main([str(src), str(out)])  # the command line, in-process
        printed = capsys.readouterr().out
        assert f'source: {kind.replace("-bare", "")} --' in printed, printed
        got = load_checkpoint_safely(out)
        assert list(got) == list(query)
        assert all(torch.equal(got[k], query[k]) for k in query)


def test_unknown_layout_lists_the_known_ones(tmp_path):
    # e.g. a DataParallel-wrapped plain ResNet: module.conv1.weight, ...
    src = tmp_path / 'model_best.pth.tar'
    torch.save({'state_dict': _prefixed(_resnet_state(18), 'module.')}, src,
               _use_new_zipfile_serialization=False)
    with pytest.raises(eb.NotAResNetError) as info:
        eb.convert(str(src), str(tmp_path / 'out.pth'))
    msg = str(info.value)
    for layout in ('liftedcl (', 'liftedcl-authors (', 'moco (', 'plain ('):
        assert layout in msg
    assert 'module.* (' in msg and 'model_best.pth.tar' in msg
    # forcing the authors' layout on a MoCo file names what is missing
    torch.save({'state_dict': _prefixed(_resnet_state(18), 'backbone.')}, src)
    with pytest.raises(eb.NotAResNetError, match=r'module\.encoder_q\.conv1\.weight'):
        eb.convert(str(src), str(tmp_path / 'out.pth'), source='liftedcl-authors')


def test_mmpretrain_moco_is_named_and_its_key_encoder_found(tmp_path, capsys):
    # MMPretrain's MoCo: backbone.*, neck.*, the EMA target_net.module.{0,1}.*, queue
    query, key = _resnet_state(18, seed=0), _resnet_state(18, seed=1)
    state = OrderedDict()
    state.update(_prefixed(query, 'backbone.'))
    state['neck.mlp.0.weight'] = torch.randn(8, 512)
    state.update(_prefixed(key, 'target_net.module.0.'))
    state['target_net.module.1.mlp.0.weight'] = torch.randn(8, 512)
    state['target_net.steps'] = torch.tensor(3)
    state['queue'] = torch.randn(8, 16)
    src = tmp_path / 'iter_1000.pth'
    torch.save(dict(meta=dict(iter=1000), state_dict=state), src)
    out = tmp_path / 'backbone.pth'
    eb.main([str(src), str(out)])
    assert 'source: mmpretrain --' in capsys.readouterr().out
    got = load_checkpoint_safely(out)
    assert list(got) == list(query) and all(torch.equal(got[k], query[k]) for k in query)
    info = eb.convert(str(src), str(tmp_path / 'key.pth'), key_encoder=True)
    assert (info['source'], info['prefix']) == ('mmpretrain', 'target_net.module.0.')
    got_k = load_checkpoint_safely(tmp_path / 'key.pth')
    assert all(torch.equal(got_k[k], key[k]) for k in key)
    # ours stays 'liftedcl' (its momentum encoder is encoder_k.*)
    _liftedcl_checkpoint(tmp_path / 'ours.pth', query, key)
    assert eb.convert(str(tmp_path / 'ours.pth'), str(tmp_path / 'o.pth'))['source'] == 'liftedcl'
