"""Pictures of skeletons and views: shared by the training hook and the tools."""
from .lifting import bare_module, denormalize, lift_views
from .panels import GUTTER_RGB, compose_grid, count_panels, grid_layout, gutter_mask, put_text
from .skeleton import (VIEWS, bone_colors_rgb, face_front, plot_skeleton_2d, plot_skeleton_3d,
                       project, render_skeleton, view_by_name)
from .view_points import coordinate_map, shared_region_points

__all__ = [
    'VIEWS', 'face_front', 'project', 'view_by_name', 'plot_skeleton_2d', 'plot_skeleton_3d',
    'render_skeleton', 'bone_colors_rgb', 'grid_layout', 'compose_grid', 'put_text',
    'gutter_mask', 'count_panels', 'GUTTER_RGB', 'lift_views', 'bare_module', 'denormalize',
    'coordinate_map', 'shared_region_points'
]
