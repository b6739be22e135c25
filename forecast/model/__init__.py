"""The network and what it is trained and compared with.

``config`` (``LSTMConfig``) -> ``parts`` (instance norm, heads, covariate encoders) -> ``net``
(``LSTMNet``, a plain ``nn.Module``) -> ``module`` (``LSTMLitModule``); ``losses`` owns the
output layout (``Forecast``) and the losses, ``baselines`` the reference forecasts,
``ensemble`` several networks as one.
"""
