# Paper / authors' schedule: SGD 0.03, momentum 0.9, wd 1e-4; cosine decay by epoch for the
# encoder, constant lr for the discriminator; 200 epochs.
optim_wrapper = dict(
    constructor='GeneratorDiscriminatorOptimWrapperConstructor',
    generator=dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4)),
    discriminator=dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4)))
# Gradient clipping (not in the paper), per wrapper, e.g. with --cfg-options:
# optim_wrapper.generator.clip_grad.max_norm=10 optim_wrapper.discriminator.clip_grad.max_norm=10

# No `end`/`T_max`: MMEngine sets `end` to the train loop's length and the cosine's T_max to
# end - begin, so `--cfg-options train_cfg.max_epochs=N` moves the whole schedule with the loop.
max_epochs = 200
param_scheduler = dict(
    generator=[dict(type='CosineAnnealingLR', by_epoch=True, begin=0)],
    discriminator=[dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0)])

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
# lr 0.03 is for a total batch of 128 (32 x 4 GPUs); enable to rescale for other batches.
auto_scale_lr = dict(base_batch_size=128, enable=False)
