"""Launching, following and stopping training runs from the app (no Gradio here: ``studio/train_tab.py`` is the UI).

A :class:`~training.launch.launcher.TrainLauncher` (one per app process) turns a
:class:`~training.launch.request.TrainRequest` (a phase, a set of phase configs, the data, epochs, batch size,
processes, an init checkpoint) into the ``python -m cli.train`` command line, starts it in the background and
follows it through the files the trainer writes::

    launcher = TrainLauncher(runs_root="runs", data_root="data")
    launcher.start(TrainRequest(phase=1, config_set="cpu-demo", synthetic=SyntheticData(clips=64, frames=32)))
    launcher.status()            # state, log tail, loss per step, val metrics per epoch, checkpoints
    launcher.stop()              # SIGTERM: the trainer finishes its step, writes last.pt and exits
    launcher.resume(name)        # the same command again with --resume
    launcher.start(launcher.next_request(name))   # phase N+1 from <run>/final.pt

The modules, in the order a request goes through them:

* :mod:`~training.launch.validation` - the phase, the numbers, the config sets and the datasets of a request
  checked one by one; :class:`~training.launch.validation.LaunchError`.
* :mod:`~training.launch.request` - :class:`~training.launch.request.TrainRequest` and the validated
  :class:`~training.launch.request.LaunchPlan` with its command line.
* :mod:`~training.launch.planning` - :class:`~training.launch.planning.RunPlanner`: a request, a resume or the
  next phase of a finished run turned into a plan.
* :mod:`~training.launch.processes` - the training process: started with its log, stopped, its outcome; the
  training processes running on this machine.
* :mod:`~training.launch.follow` - a run's ``metrics.jsonl`` and ``train.log`` read as they grow.
* :mod:`~training.launch.runs` - run folders: ``launch.json``, :class:`~training.launch.runs.RunInfo`, the runs
  list and the checkpoint choices.
* :mod:`~training.launch.launcher` - :class:`~training.launch.launcher.TrainLauncher`, one run at a time.

How runs are started and stopped:

* The command is a list (never a shell string): one process runs ``python -m cli.train`` directly, N > 1
  processes run it under ``python -m torch.distributed.run --standalone --nproc_per_node N``. The trainer's
  output goes to ``<run>/train.log``; the process gets its own session, so that the app's Ctrl-C leaves it alone.
* One run at a time per launcher: ``TrainLauncher.start`` refuses a second one while one is running.
* Stopping sends SIGTERM to the training process(es) only, never to the DataLoader workers (they would die
  under it and take the step with them); under torchrun to the ranks, not to torchrun, which would forward a
  second SIGTERM (the trainer's "stop now") and kill them after 30 s.
* ``<run>/launch.json`` records the request, the command and, once the process ended, the outcome: the runs
  table (:func:`~training.launch.runs.list_runs`) and ``TrainLauncher.resume`` read it. Runs started from the
  command line (no ``launch.json``) are listed too, their state read from their checkpoints.
* A chained run (``chain=True``) starts phase N+1 with ``--init <run>/final.pt`` when phase N finished
  successfully (not when it failed or was stopped).

Every problem with a request raises :class:`~training.launch.validation.LaunchError` (a ``ValueError``) or the
phase loader's :class:`~training.phases.ConfigError`, with a one-line message the app shows as it is.
"""
