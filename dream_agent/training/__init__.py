"""Training hooks: the masked-diffusion loss, planner data, `DiffusionTrainer`, LoRA, the small-model recipe."""

from .data import PlannerCollator, PlannerDataset, PlannerStream
from .losses import LOSS_WEIGHTS, DiffusionLoss, diffusion_loss, forward_mask, masked_diffusion_loss
from .small import SIZES, context_for, count_parameters, small_config
from .trainer import DiffusionTrainer, SolveRateCallback, diffusion_training_args, find_resumable

__all__ = [
    "LOSS_WEIGHTS", "SIZES", "DiffusionLoss", "DiffusionTrainer", "PlannerCollator", "PlannerDataset", "PlannerStream",
    "SolveRateCallback", "context_for", "count_parameters", "diffusion_loss", "diffusion_training_args",
    "find_resumable", "forward_mask", "masked_diffusion_loss", "small_config",
]
