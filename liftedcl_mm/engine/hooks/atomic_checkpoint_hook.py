import glob
import os
import os.path as osp
import re

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS as MMENGINE_HOOKS

from liftedcl_mm.registry import HOOKS


def _replace_atomically(write, path):
    """Call ``write(tmp_path)``, flush it to disk, then rename it to ``path`` in one step."""
    tmp = osp.join(osp.dirname(path), f'.{osp.basename(path)}.tmp{os.getpid()}')
    try:
        write(tmp)
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


# ".iter_5.pth.tmp1234", ".last_checkpoint.tmp1234": the names _replace_atomically and the hook
# give their temporary files (pid of the writer at the end).
_TEMP_NAME = re.compile(r'^\.(.+\.pth|last_checkpoint)\.tmp(\d+)$')


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(folder, log=None):
    """Delete the temporary files of saves whose writer process is gone (killed mid-save).

    Args:
        folder (str): Folder to clean.
        log (callable, optional): Called with each path *before* it is deleted, so a kill in
            between leaves the file (removed, and reported, by the next start).

    Returns:
        list[str]: The removed paths.
    """
    removed = []
    for path in glob.glob(osp.join(glob.escape(folder), '.*.tmp*')):
        match = _TEMP_NAME.match(osp.basename(path))
        if match is None or not osp.isfile(path):
            continue
        pid = int(match.group(2))
        if pid == os.getpid() or _pid_alive(pid):
            continue  # a live writer (e.g. another run in the same folder) owns it
        if log is not None:
            log(path)
        os.remove(path)
        removed.append(path)
    return removed


def find_nonfinite_tensors(state_dict):
    """Names of the floating-point tensors of ``state_dict`` holding NaN or Inf."""
    return [
        name for name, value in state_dict.items()
        if torch.is_tensor(value) and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    ]


# Also in MMEngine's root registry: MMPose-scoped configs (default_scope='mmpose') reach it
# through their parent chain; our scope, a child of MMPretrain's, is not visible from there.
@MMENGINE_HOOKS.register_module()
@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """A :class:`CheckpointHook` whose checkpoints survive being killed at any moment.

    MMEngine writes the checkpoint in place, deletes the oldest one *before* writing the new one and
    then rewrites ``last_checkpoint`` in place, so a kill while saving can leave ``--resume auto``
    pointing at a partial or deleted file. Here the checkpoint is written to a temporary file and
    renamed, ``last_checkpoint`` is replaced the same way, and outdated checkpoints are removed only
    after both. A model holding NaN/Inf is never saved: the save raises instead. Temporary files
    left by a save that was killed are removed when training (re)starts.

    Accepts every argument of :class:`mmengine.hooks.CheckpointHook`; ``out_dir`` must be local.
    """

    def before_train(self, runner):
        super().before_train(runner)
        if is_main_process():
            # a save killed half-way leaves its (large) temporary file behind; never renamed,
            # it would stay forever
            for folder in {self.out_dir, runner.work_dir}:
                remove_stale_temp_files(
                    folder,
                    log=lambda path: runner.logger.warning(
                        f'Removing {path}, left by an interrupted save'))

    def _save_checkpoint_with_step(self, runner, step, meta):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        bad = find_nonfinite_tensors(model.state_dict())
        if bad:
            raise FloatingPointError(
                f'Refusing to save a checkpoint at iteration {runner.iter + 1}: non-finite values '
                f'in {", ".join(bad[:5])}{" ..." if len(bad) > 5 else ""}. The last complete '
                'checkpoint is kept.')

        # Book-keeping as MMEngine does (the ids are saved in the checkpoint's message hub), but the
        # files are deleted only after the new checkpoint is safely in place.
        outdated = []
        if self.max_keep_ckpts > 0 and (not self.keep_ckpt_ids or self.keep_ckpt_ids[-1] != step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        final_path = osp.join(self.out_dir, ckpt_filename)
        tmp_filename = f'.{ckpt_filename}.tmp{os.getpid()}'
        self.last_ckpt = final_path
        runner.message_hub.update_info('last_ckpt', final_path)
        try:
            runner.save_checkpoint(
                self.out_dir,
                tmp_filename,
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)
            if is_main_process():
                tmp_path = osp.join(self.out_dir, tmp_filename)
                with open(tmp_path, 'rb+') as f:
                    os.fsync(f.fileno())
                os.replace(tmp_path, final_path)
        finally:
            tmp_path = osp.join(self.out_dir, tmp_filename)
            if is_main_process() and osp.exists(tmp_path):
                os.remove(tmp_path)

        if not is_main_process():
            return

        def write_last(path):
            with open(path, 'w') as f:
                f.write(final_path)

        _replace_atomically(write_last, osp.join(runner.work_dir, 'last_checkpoint'))

        # Outdated checkpoints go only now that the new one is complete and referenced.
        for old_step in outdated:
            old = osp.join(self.out_dir, self.filename_tmpl.format(old_step))
            if osp.isfile(old) and old != final_path:
                os.remove(old)
