"""Adversarial robustness (TensorFlow-specific): attacks and robust evaluation (`attacks`), and
adversarial training with PGD, Free, YOPO and TRADES (`trainer`)."""

from odezoo.adversarial.attacks import check_budget as check_budget
from odezoo.adversarial.attacks import check_in_unit_box as check_in_unit_box
from odezoo.adversarial.attacks import fgsm as fgsm
from odezoo.adversarial.attacks import pgd as pgd
from odezoo.adversarial.attacks import project as project
from odezoo.adversarial.attacks import robust_evaluate as robust_evaluate
from odezoo.adversarial.trainer import FIRST_LAYER_RULES as FIRST_LAYER_RULES
from odezoo.adversarial.trainer import METHODS as METHODS
from odezoo.adversarial.trainer import AdversarialTrainer as AdversarialTrainer
from odezoo.adversarial.trainer import Attack as Attack
from odezoo.adversarial.trainer import check_first_layer_rule as check_first_layer_rule
from odezoo.adversarial.trainer import split_model as split_model
