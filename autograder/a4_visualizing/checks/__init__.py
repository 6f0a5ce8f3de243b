"""Hidden checks for a4_visualizing, on the checks harness (see ``harness``), one module per
part of the notebook: ``images`` (to_grayscale, SmallCNN, log_run, filter_grid) and
``inside`` (activation_stats, maximize_activation, deconv_project, occlusion_map, RowRNN);
``common`` holds what they share (drawn networks and images).

Every check draws its inputs from the grading run's ``rng``, names a probe of
``a4_visualizing.probes`` for the student's kernel, and judges what came back against
``a4_visualizing.reference`` here in the grader.
"""
from .images import (check_filter_grid, check_log_run, check_small_cnn, check_to_grayscale, filter_grid_unit,
                     log_run_unit, read_events, small_cnn_unit, to_grayscale_unit)
from .inside import (activation_stats_unit, check_activation_stats, check_deconv_project,
                     check_maximize_activation, check_occlusion_map, check_row_rnn, deconv_unit, maximize_unit,
                     occlusion_unit, row_rnn_unit)

UNITS = {u.grade_id: u for u in (to_grayscale_unit, small_cnn_unit, log_run_unit, filter_grid_unit,
                                 activation_stats_unit, maximize_unit, deconv_unit, occlusion_unit, row_rnn_unit)}

__all__ = ["check_to_grayscale", "check_small_cnn", "check_log_run", "check_filter_grid", "check_activation_stats",
           "check_maximize_activation", "check_deconv_project", "check_occlusion_map", "check_row_rnn",
           "read_events", "UNITS"]
