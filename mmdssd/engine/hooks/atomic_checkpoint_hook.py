import glob
import os
import os.path as osp
from typing import Optional

from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.hooks import CheckpointHook

from mmdssd.fileio import ATOMIC_LOCAL, TMP_MARK, AtomicLocalBackend
from mmdssd.fileio import atomic_write


def use_atomic_checkpoints(cfg) -> None:
    """Make a config's plain MMEngine ``CheckpointHook`` an
    :class:`AtomicCheckpointHook`, keeping its arguments (for configs that
    do not inherit mmdssd's runtime, such as MMDetection's own)."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    plain = ('CheckpointHook', 'mmengine.CheckpointHook', CheckpointHook)
    if hook and hook.get('type') in plain:
        hook.type = 'AtomicCheckpointHook'


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """MMEngine's :class:`~mmengine.hooks.CheckpointHook`, written so that
    a kill or an I/O error at any moment leaves a complete checkpoint.

    MMEngine removes the oldest checkpoint first, writes the new one in
    place and rewrites ``last_checkpoint`` last: a kill or a full disk in
    the write leaves a truncated file and, with ``max_keep_ckpts=1``, no
    complete checkpoint while ``last_checkpoint`` names a deleted file.
    Here, for checkpoints on the local disk, each file (checkpoints, the
    best checkpoint, ``last_checkpoint``) is written to a temporary name,
    flushed and renamed into place, and a checkpoint that falls out of
    ``max_keep_ckpts`` (or a replaced best one) is removed only after its
    successor is complete. A failed write raises
    :class:`~mmdssd.fileio.CheckpointWriteError` naming the file and the
    free space. Other storage backends (``backend_args``) behave as in
    MMEngine.

    Args:
        Those of :class:`~mmengine.hooks.CheckpointHook`, unchanged.
    """

    def before_train(self, runner) -> None:
        out_dir = self.out_dir or runner.work_dir
        if (self.backend_args is None and self.file_client_args is None
                and type(get_file_backend(out_dir)) is LocalBackend):
            self.backend_args = dict(backend=ATOMIC_LOCAL)
        super().before_train(runner)
        if self._atomic and is_main_process():
            self._remove_partial_files(runner)

    @property
    def _atomic(self) -> bool:
        return isinstance(getattr(self, 'file_backend', None),
                          AtomicLocalBackend)

    def _remove_partial_files(self, runner) -> None:
        # what a kill in a write leaves behind; never a complete file
        for path in glob.glob(osp.join(glob.escape(self.out_dir),
                                       f'.*{TMP_MARK}*')):
            os.remove(path)
            runner.logger.warning(
                f'removed {path}, left by a write that was interrupted')

    def _save_checkpoint_with_step(self, runner, step: int,
                                   meta: dict) -> None:
        if not self._atomic:
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        retired = self._retire_oldest(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write(self.last_ckpt,
                     osp.join(runner.work_dir, 'last_checkpoint'))
        if retired is not None:
            self._remove(retired)

    def _retire_oldest(self, runner, step: int) -> Optional[str]:
        """Book ``step`` into ``keep_ckpt_ids``, as MMEngine does, and
        return the checkpoint that falls out, to be removed afterwards."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids
                                        and self.keep_ckpt_ids[-1] == step):
            return None
        retired = None
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            retired = self.file_backend.join_path(
                self.out_dir,
                self.filename_tmpl.format(self.keep_ckpt_ids.popleft()))
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
        return retired if is_main_process() else None

    def _remove(self, path: str) -> None:
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # DeepSpeed's checkpoints
            self.file_backend.rmtree(path)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        if not self._atomic:
            super()._save_best_checkpoint(runner, metrics)
            return
        with self.file_backend.removals_deferred():
            super()._save_best_checkpoint(runner, metrics)
