"""The offline demo: real pretrained weights on real data, with baselines that show what transfer bought."""
