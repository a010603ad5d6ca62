default_scope = 'liftedcl_mm'
custom_imports = dict(imports=['liftedcl_mm'], allow_failed_imports=False)

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # atomic saves (safe to kill at any moment) and never a checkpoint holding NaN/Inf
    checkpoint=dict(type='AtomicCheckpointHook', interval=10, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

# NCCL on GPUs; the launch tools switch to gloo when CUDA is absent.
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

# `lr` repeats the encoder's lr (generator.lr) under the name MMPretrain's log tools look for:
# `mim run mmpretrain analyze_logs plot_curve|cal_train_time <work_dir>/<timestamp>/vis_data/
# <timestamp>.json` then read our logs as training logs (configs without it are unaffected).
log_processor = dict(
    window_size=10,
    custom_cfg=[dict(data_src='generator.lr', log_name='lr', method_name='mean', window_size=1)])

# Where the logged scalars and the pictures (LiftedSkeletonVisHook) go: <work_dir>/<timestamp>/
# vis_data/ (scalars.json, vis_image/). TensorBoard as well (`bash tools/install.sh
# --with-tensorboard`, then `tensorboard --logdir work_dirs`): uncomment its line for every config,
# or switch it on in one config with
# visualizer = dict(vis_backends=[dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])
vis_backends = [
    dict(type='LocalVisBackend'),
    # dict(type='TensorboardVisBackend'),
]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, diff_rank_seed=False, deterministic=False)
