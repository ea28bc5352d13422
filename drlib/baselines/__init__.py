"""Latent-reasoning baselines of Table 2: ReaRec (ERL, PRL) and LARES, on the SASRec backbone."""
