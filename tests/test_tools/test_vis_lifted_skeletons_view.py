"""The 3D plot of tools/visualization/vis_lifted_skeletons.py shows a +Y-facing skeleton from the
front: its left (-X) on the viewer's right."""
import importlib.util
import os.path as osp

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_front_view_of_the_3d_plot(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d import proj3d

    from liftedcl_mm.skeleton import H36M_BONES, H36M_JOINT_NAMES, H36M_TEMPLATE_BONES
    spec = importlib.util.spec_from_file_location(
        'vis_lifted_skeletons', osp.join(ROOT, 'tools', 'visualization', 'vis_lifted_skeletons.py'))
    vis = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vis)
    skel = np.zeros((17, 3))
    for k, (parent, child) in enumerate(H36M_BONES):
        skel[child] = skel[parent] + H36M_TEMPLATE_BONES[k]
    figs = []
    monkeypatch.setattr(plt, 'close', lambda fig=None: figs.append(fig))
    vis.draw_grid(np.zeros((1, 8, 8, 3), np.uint8), skel[None], str(tmp_path / 'g.png'))
    ax3d = figs[0].axes[1]
    proj = ax3d.get_proj()
    screen_x = {}
    for name in ('left_hip', 'right_hip', 'left_shoulder', 'right_shoulder'):
        x, y, z = skel[H36M_JOINT_NAMES.index(name)]
        screen_x[name] = proj3d.proj_transform(x, y, z, proj)[0]
    assert screen_x['left_hip'] > screen_x['right_hip']
    assert screen_x['left_shoulder'] > screen_x['right_shoulder']
    plt.close('all')
