"""Conversion shared between the processes of a torchrun launch (``translate convert``)."""

from __future__ import annotations

import dataclasses

from translate.devices import Context, all_gather_objects, broadcast_object, main_first, shard
from translate.infer.convert import Report, convert, plan_jobs


def convert_shared(ctx: Context, engine, input_spec, output_dir, options, progress: bool):
    """``translate.infer.convert.convert`` split between the processes of a launch: process 0
    plans (lists the inputs, applies ``--skip-existing``) and hands the plan to all; each
    process converts every world-th file of it; every process returns the merged
    :class:`~translate.infer.convert.Report` (its lists joined over the processes, its numbers,
    such as seconds, those of the slowest)."""
    def plan():  # on process 0 only: one listing, one existence check per file
        return plan_jobs(input_spec, output_dir, options) if ctx.is_main else None

    jobs, skipped = broadcast_object(ctx, main_first(ctx, plan))
    mine = shard(jobs, ctx.rank, ctx.world)
    report = convert(engine, input_spec, output_dir, options, progress=progress and ctx.is_main,
                     planned=(mine, skipped if ctx.is_main else []))
    merged = Report()
    for part in all_gather_objects(ctx, report):
        for f in dataclasses.fields(Report):
            mine, theirs = getattr(merged, f.name), getattr(part, f.name)
            setattr(merged, f.name, mine + theirs if isinstance(mine, list)
                    else max(mine, theirs))
    return merged
